"""`herald devserver` (make run): the real stack booted under make, used, then stopped.

The slow tests run the quickstart itself (SQLite + embedded Redis) in a project directory of
their own (copies of the Procfile and gunicorn.conf.py), so they share nothing with a
`make run` in the checkout.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from freezegun import freeze_time

from api.config import ROOT
from api.devserver import (
    DevserverError,
    banner,
    check_port_free,
    devserver_environ,
    prepare_database,
    read_procfile,
)
from tests.support import Run, free_port

HERALD = Path(sys.executable).parent / "herald"
# make must see SIGINT with its default disposition (a background job of a script ignores it)
MAKE_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp('make', ['make', '--no-print-directory', '-f', sys.argv[1], 'run'])"
)


@pytest.fixture
def make_run(project: Path) -> Iterator[tuple[Run, int]]:
    """`make run` of a Makefile whose run target is `herald devserver` on `project`."""
    port = free_port()
    makefile = project / "Makefile"
    makefile.write_text(f"run:\n\t{HERALD} devserver --project-dir {project} --port {port}\n")
    run = Run.start([sys.executable, "-c", MAKE_WITH_DEFAULT_SIGINT, str(makefile)], project)
    process = run.process
    try:
        yield run, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        for pgid in run.group_ids():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def processes_in_groups(groups: set[int]) -> list[str]:
    """Live (non-zombie) processes whose process group is one of `groups`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) in groups and state != "Z":
            found.append(text.split(")", 1)[0] + ")")
    return found


def assert_stopped_cleanly(run: Run, *, make_signal: int | None) -> None:
    """make ended (by `make_signal`, as make re-raises it, or 0) with no error line and no
    process of the stack left."""
    code = run.process.wait(timeout=45)
    output = "\n".join(run.lines)
    assert code == (-make_signal if make_signal else 0), output[-3000:]
    assert "make: ***" not in output, output[-3000:]
    assert run.lines[-1].endswith("| stopped"), output[-3000:]
    groups = run.group_ids()
    assert len(groups) == 4  # redis, web, worker, scheduler
    assert processes_in_groups(groups) == []


@pytest.mark.slow
def test_make_run_boots_serves_and_stops_on_ctrl_c(
    make_run: tuple[Run, int], project: Path
) -> None:
    run, port = make_run
    started = time.monotonic()
    ready = run.wait_for(r"\| ready in [\d.]+ s: web \(health 204\), worker, scheduler", 120)
    boot = time.monotonic() - started
    token = run.wait_for(r"^  Token:  (hrld_\S+)$", 1).group(1)
    assert (project / "var" / "dev-token").read_text().strip() == token
    portal = run.wait_for(r"^  Portal: (http://\S+/portal/)#key=(appsk_\S+)   \(app demo\)$", 1)
    assert portal.group(1) == f"http://127.0.0.1:{port}/portal/"
    assert (project / "var" / "herald.db").is_file()  # the quickstart's SQLite file
    assert any(re.search(r"redis .*ready to accept connections", x, re.I) for x in run.lines)
    base = f"http://127.0.0.1:{port}/api/v1"
    assert requests.get(f"{base}/health", timeout=5).status_code == 204
    listed = requests.get(f"{base}/app", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert listed.status_code == 200, listed.text
    session = requests.get(
        f"{base}/auth/portal-session",
        headers={"Authorization": f"Bearer {portal.group(2)}"},
        timeout=5,
    )
    assert session.status_code == 200 and session.json()["appUid"] == "demo", session.text
    at_ready = run.lines.index(next(x for x in run.lines if ready.group(0) in x))
    time.sleep(5)  # two dispatcher passes (HERALD_DISPATCH_INTERVAL 2 s) and more
    idle = [x for x in run.lines[at_ready + 1 :] if "GET /api/v1/" not in x]
    assert idle == [], idle  # no "Sending due task" / "dispatch_due received/succeeded"
    os.killpg(run.process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    assert_stopped_cleanly(run, make_signal=signal.SIGINT)
    assert "SIGINT: stopping" in "\n".join(run.lines)
    print(f"make run → ready in {boot:.1f} s")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_make_run_stops_when_make_alone_is_signalled(
    make_run: tuple[Run, int], signum: int
) -> None:
    run, _ = make_run
    run.wait_for(r"\| ready in ", 120)
    os.kill(run.process.pid, signum)  # make only: it forwards TERM, but never INT
    assert_stopped_cleanly(run, make_signal=signum)
    reason = "make was interrupted" if signum == signal.SIGINT else "SIGTERM"
    assert f"| {reason}: stopping" in "\n".join(run.lines)


def test_read_procfile_has_the_processes_devserver_runs() -> None:
    entries = read_procfile(ROOT / "Procfile")
    assert {"release", "web", "worker", "scheduler"} <= set(entries)
    assert entries["web"] == "gunicorn -c gunicorn.conf.py"


def test_devserver_environ_defaults_to_sqlite_and_embedded_redis(tmp_path: Path) -> None:
    env = devserver_environ(tmp_path, 18099, {"PATH": "/usr/bin"})
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path}/var/herald.db"
    assert env["REDIS_URL"] == f"unix://{tmp_path}/var/redis.sock"
    assert env["HERALD_RUN_DIR"] == f"{tmp_path}/var/run"
    assert (env["HERALD_ENV"], env["PORT"], env["WEB_CONCURRENCY"]) == ("development", "18099", "2")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    given = {"DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r", "HERALD_ENV": "x"}
    assert devserver_environ(tmp_path, 1, given).items() >= given.items()


def test_check_port_free_names_the_fix() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(DevserverError, match=r"port \d+ is in use .* set PORT="):
            check_port_free("127.0.0.1", busy.getsockname()[1])


def test_prepare_database_keeps_a_working_dev_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'herald.db'}")
    token_file = tmp_path / "var" / "dev-token"
    first, created, portal = prepare_database(token_file)
    assert created == f"directory {tmp_path / 'var'}"
    assert token_file.read_text() == first + "\n" and token_file.stat().st_mode & 0o777 == 0o600
    again, _, portal_again = prepare_database(token_file)
    assert again == first  # a TOKEN=$(cat var/dev-token) in another shell keeps working
    assert portal_again == portal and portal.startswith("appsk_")  # the printed link too
    token_file.write_text("hrld_not-a-token\n")
    replaced, _, _ = prepare_database(token_file)
    assert replaced not in (first, "hrld_not-a-token") and replaced.startswith("hrld_")


def test_prepare_database_renews_the_demo_portal_token_near_its_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'herald.db'}")
    token_file = tmp_path / "var" / "dev-token"
    with freeze_time("2026-06-01 12:00:00") as clock:
        _, _, portal = prepare_database(token_file)
        assert (tmp_path / "var" / "dev-portal-token").read_text() == portal + "\n"
        clock.tick(6 * 24 * 3600 - 1)  # a day and a second left of its 7 days: kept
        assert prepare_database(token_file)[2] == portal
        clock.tick(2)
        renewed = prepare_database(token_file)[2]
    assert renewed != portal and renewed.startswith("appsk_")


def test_banner_prints_the_portal_link_beside_the_token(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///x.db", "REDIS_URL": "redis://r"}
    text = banner(8123, "hrld_t", env, False, tmp_path / "dev-token", "appsk_p")
    lines = text.splitlines()
    at = lines.index("  Token:  hrld_t")
    assert lines[at + 1] == "  Portal: http://127.0.0.1:8123/portal/#key=appsk_p   (app demo)"
