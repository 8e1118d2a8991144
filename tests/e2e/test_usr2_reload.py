"""Zero-downtime `kill -USR2` reload, end to end: real gunicorn, real HTTP, bin/deploy-usr2.

gunicorn runs as the Procfile runs it (`.venv/bin/gunicorn -c gunicorn.conf.py`), with the
test-only entry point tests/e2e/usr2_app.py, which wraps `api.create_app()` and reports the
release (a file read at import) and the worker pid in response headers, or fails to import
when a marker file exists (a broken release). Requests: 8 threads, a new connection each.

Run: .venv/bin/pytest -q tests/e2e/test_usr2_reload.py   (PostgreSQL and Redis on 127.0.0.1)
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.gunicorn_harness import (
    DEPLOY_USR2,
    GunicornServer,
    LoadGenerator,
    children,
    ensure_database,
    failures,
    is_alive,
    ppid_of,
    summary,
    title,
    wait_for,
)

pytestmark = pytest.mark.slow

PING = "/api/v1/health/ping"


@pytest.fixture(scope="module")
def database_url() -> str:
    return ensure_database()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[GunicornServer]:
    srv = GunicornServer(tmp_path / "run", database_url=database_url)
    try:
        yield srv
    finally:
        srv.stop()
        print(f"--- gunicorn log ({srv.log_path}) ---\n{srv.log_tail()}")  # shown on failure


def probe(server: GunicornServer, n: int = 12) -> list[tuple[str | None, int]]:
    """Sequential requests, a new connection each: [(release, worker pid)]."""
    seen = []
    for _ in range(n):
        r = requests.get(server.base_url + PING, timeout=5, headers={"Connection": "close"})
        assert r.status_code == 204, r.text
        seen.append((r.headers.get("X-Herald-Release"), int(r.headers["X-Herald-Worker-Pid"])))
    return seen


def test_usr2_hand_off_under_load_serves_the_new_release_without_errors(
    server: GunicornServer,
) -> None:
    server.set_release("v1")
    old = server.start()
    old_workers = server.worker_pids(old)
    assert title(old) == "gunicorn: master [herald]"
    assert {pid for _, pid in probe(server, 6)} <= set(old_workers)

    load = LoadGenerator(server.base_url).start()
    try:
        time.sleep(2.5)
        server.set_release("v2")  # "the code on disk changed"
        usr2_at = time.monotonic()
        deploy = server.deploy(timeout_s=25)
        done_at = time.monotonic()
        time.sleep(2.0)  # keep the load on after the hand-off
    finally:
        results = load.stop()
    print(summary(results), f"| deploy: {deploy.stdout.strip()!r} {deploy.stderr.strip()!r}")

    # the deploy script saw the hand-off complete
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    m = re.search(r"hand-off complete: old=(\d+) new=(\d+) \((\d+\.\d)s\)", deploy.stdout)
    assert m, deploy.stdout
    assert int(m[1]) == old
    new = int(m[2])

    # not one request failed, before, during or after the hand-off
    assert not failures(results), summary(results)
    assert len(results) >= 200, summary(results)

    # old master gone; exactly one new master, promoted: it owns the pidfile and the title
    assert wait_for(lambda: server.process.poll() is not None, 5), "old master did not exit"
    assert server.process.returncode == 0
    assert not is_alive(old)
    assert not any(is_alive(p) for p in old_workers)
    assert new != old and is_alive(new)
    assert server.master_pid() == new
    assert ppid_of(new) != old
    assert title(new) == "gunicorn: master [herald]"
    assert not Path(str(server.pidfile) + ".2").exists()
    assert not list(server.run_dir.glob("usr2-booted.*"))  # the hand-off counter is gone
    new_workers = server.worker_pids(new)
    assert len(new_workers) == 2
    assert server.usr2_children(new, new_workers) == []  # no further generation

    # the new code serves: release v2, answered by the new master's workers only
    assert {r.release for r in results if r.start < usr2_at} == {"v1"}
    after = [r for r in results if r.start > done_at]
    assert after, summary(results)
    assert {r.release for r in after} == {"v2"}
    assert {r.worker for r in after} <= set(new_workers)
    seen = probe(server)
    assert {rel for rel, _ in seen} == {"v2"}
    assert {pid for _, pid in seen} <= set(new_workers)
    assert all(ppid_of(pid) == new for _, pid in seen)


def test_broken_release_is_contained_old_master_keeps_serving(server: GunicornServer) -> None:
    server.set_release("v1")
    old = server.start()
    old_workers = server.worker_pids(old)

    load = LoadGenerator(server.base_url).start()
    try:
        time.sleep(2.0)
        server.set_broken(True)  # the new release cannot import the app
        deploy = server.deploy(timeout_s=25)
        time.sleep(2.0)
    finally:
        results = load.stop()
    print(summary(results), f"| deploy: {deploy.stdout.strip()!r} {deploy.stderr.strip()!r}")

    assert deploy.returncode == 1, deploy.stdout + deploy.stderr
    m = re.search(
        r"new master (\d+) died during boot; old master (\d+) is still serving", deploy.stderr
    )
    assert m, deploy.stdout + deploy.stderr
    dead, reported_old = int(m[1]), int(m[2])
    assert reported_old == old and dead != old

    assert not failures(results), summary(results)
    assert len(results) >= 200, summary(results)

    # the old master and its workers are untouched and still the only ones serving
    assert is_alive(old) and server.process.poll() is None
    assert server.master_pid() == old
    assert title(old) == "gunicorn: master [herald]"
    assert not is_alive(dead)
    assert server.usr2_children(old, old_workers) == []
    assert sorted(server.worker_pids(old)) == sorted(old_workers)
    assert children(old) == sorted(old_workers)
    assert {r.release for r in results} == {"v1"}
    assert {r.worker for r in results} <= set(old_workers)
    # the script removed what the crashed master left behind
    assert not Path(str(server.pidfile) + ".2").exists()
    assert not (server.run_dir / f"usr2-booted.{dead}").exists()
    assert {pid for _, pid in probe(server)} <= set(old_workers)


def test_stale_pidfile_2_from_a_failed_usr2_does_not_block_the_next_deploy(
    server: GunicornServer,
) -> None:
    """A bare `kill -USR2` of a broken release leaves `<pidfile>.2` behind; after the fix is
    deployed, bin/deploy-usr2 must neither mistake it for the new master nor trip over it."""
    server.set_release("v1")
    old = server.start()
    old_workers = server.worker_pids(old)
    server.set_broken(True)
    stale_file = Path(str(server.pidfile) + ".2")

    server.process.send_signal(signal.SIGUSR2)  # by hand, no deploy script
    failed: list[int] = []

    def new_master_seen() -> bool:
        pid = server.new_master_file_pid()
        failed.extend([pid] if pid else server.usr2_children(old, old_workers))
        return bool(failed)

    assert wait_for(new_master_seen, 10, interval=0.02), "no new master seen after USR2"
    server.track(failed[0])
    assert wait_for(lambda: not is_alive(failed[0]), 20), "broken generation did not exit"
    assert wait_for(lambda: server.usr2_children(old, old_workers) == [], 5)
    if not stale_file.exists():  # gunicorn removed it this time: leave what a crash leaves
        stale_file.write_text(f"{failed[0]}\n")
    assert is_alive(old) and server.master_pid() == old

    server.set_broken(False)
    server.set_release("v2")
    deploy = server.deploy(timeout_s=25)
    print(f"deploy: {deploy.stdout.strip()!r} {deploy.stderr.strip()!r}")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "removing stale" in deploy.stdout
    m = re.search(r"hand-off complete: old=(\d+) new=(\d+)", deploy.stdout)
    assert m and int(m[1]) == old
    new = int(m[2])
    assert new != failed[0] and is_alive(new) and not is_alive(old)
    assert server.master_pid() == new and not stale_file.exists()
    assert {rel for rel, _ in probe(server)} == {"v2"}


def test_deploy_timeout_stops_a_stuck_new_generation_and_keeps_the_old_master(
    server: GunicornServer,
) -> None:
    """The new workers are still importing when TIMEOUT_S runs out: the script stops the new
    master, and the workers that finish importing afterwards must not hand off (they would
    stop the old master too: that was an outage before post_worker_init checked worker.alive)."""
    server.set_release("v1")
    old = server.start()
    old_workers = server.worker_pids(old)
    server.set_slow_boot(5)
    server.set_release("v2")
    load = LoadGenerator(server.base_url, threads=2).start()
    try:
        deploy = server.deploy(timeout_s=2)
        m = re.search(
            r"stopping new master (\d+) \(TERM\); old master (\d+) is still serving", deploy.stderr
        )
        assert deploy.returncode == 1 and m, deploy.stdout + deploy.stderr
        stuck = int(m[1])
        assert int(m[2]) == old
        # the stuck workers finish their import ~5 s after USR2, then the new master exits
        assert wait_for(lambda: not is_alive(stuck), 30), "new master did not stop"
        time.sleep(1.5)
    finally:
        results = load.stop()
    print(summary(results), f"| deploy: {deploy.stdout.strip()!r} {deploy.stderr.strip()!r}")
    assert "hand-off:" not in server.log_tail(400)  # no worker sent the hand-off TERM
    assert is_alive(old) and server.master_pid() == old
    assert sorted(server.worker_pids(old)) == sorted(old_workers)
    assert not failures(results), summary(results)
    assert {r.release for r in results} == {"v1"}
    assert not Path(str(server.pidfile) + ".2").exists()


def test_deploy_timeout_while_the_old_master_drains_does_not_stop_the_new_one(
    server: GunicornServer,
) -> None:
    """A request longer than TIMEOUT_S keeps the old master draining after the hand-off TERM:
    the new master is then the only one accepting, and the script must leave it alone."""
    server.set_release("v1")
    old = server.start()
    long_request: dict[str, requests.Response] = {}

    def slow() -> None:
        long_request["r"] = requests.get(server.base_url + "/__e2e/sleep/16", timeout=40)

    slow_thread = threading.Thread(target=slow, daemon=True)
    slow_thread.start()
    time.sleep(0.5)  # the long request is in an old worker
    server.set_release("v2")
    load = LoadGenerator(server.base_url, threads=2).start()
    try:
        deploy = server.deploy(timeout_s=10)
        slow_thread.join(20)
        assert wait_for(lambda: server.master_pid() not in (None, old), 10)
        time.sleep(1.0)
    finally:
        results = load.stop()
    print(summary(results), f"| deploy: {deploy.stdout.strip()!r} {deploy.stderr.strip()!r}")
    assert deploy.returncode == 1, deploy.stdout + deploy.stderr
    m = re.search(
        rf"old master {old} is still draining .* new master (\d+) is serving; "
        r"not stopping it",
        deploy.stderr,
    )
    assert m, deploy.stdout + deploy.stderr
    new = int(m[1])
    assert long_request["r"].status_code == 200  # drained, not cut off
    assert long_request["r"].headers["X-Herald-Release"] == "v1"
    assert not failures(results), summary(results)
    assert not is_alive(old)
    assert server.master_pid() == new and is_alive(new)
    assert title(new) == "gunicorn: master [herald]"
    assert {rel for rel, _ in probe(server)} == {"v2"}


def test_deploy_script_refuses_without_a_running_master(tmp_path: Path) -> None:
    pidfile = tmp_path / "gunicorn.pid"
    done = subprocess.run(
        [str(DEPLOY_USR2), str(pidfile)], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 2 and "no pidfile" in done.stderr
    pidfile.write_text("999999999\n")
    done = subprocess.run(
        [str(DEPLOY_USR2), str(pidfile)], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 2 and "not running" in done.stderr
