"""Zero-downtime `kill -USR2` reload, end to end: real gunicorn, real HTTP, bin/deploy-usr2.

gunicorn runs as the Procfile runs it (`.venv/bin/gunicorn -c gunicorn.conf.py`), with the
test-only entry point tests/e2e/usr2_app.py, which wraps `api.create_app()` and reports the
release (a file read at import) and the worker pid in response headers, or fails to import
when a marker file exists (a broken release). Requests: 8 threads, a new connection each.

Waits are event-driven (a pidfile, a process, a request count) with deadlines sized for a slow,
loaded 2-core machine (gunicorn_harness.BOOT_TIMEOUT, DEPLOY_TIMEOUT); the checks are not looser:
0 failed requests, the exact processes and releases.

Run: .venv/bin/pytest -q tests/e2e/test_usr2_reload.py   (PostgreSQL and Redis on 127.0.0.1)
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.gunicorn_harness import (
    BOOT_TIMEOUT,
    DEPLOY_USR2,
    REQUEST_TIMEOUT,
    Deploy,
    GunicornServer,
    Hold,
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
        r = requests.get(
            server.base_url + PING, timeout=REQUEST_TIMEOUT, headers={"Connection": "close"}
        )
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
        load.wait_count(200)  # v1 traffic before the hand-off
        server.set_release("v2")  # "the code on disk changed"
        usr2_at = time.monotonic()
        deploy = server.deploy()
        done_at = time.monotonic()
        load.wait_count(150, since=done_at)  # keep the load on after the hand-off
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
    assert wait_for(lambda: server.process.poll() is not None, BOOT_TIMEOUT), "old master lives"
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
        load.wait_count(150)
        server.set_broken(True)  # the new release cannot import the app
        deploy = server.deploy()
        load.wait_count(100, since=time.monotonic())
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

    assert wait_for(new_master_seen, 30, interval=0.02), "no new master seen after USR2"
    server.track(failed[0])
    assert wait_for(lambda: not is_alive(failed[0]), BOOT_TIMEOUT), "broken generation lives"
    assert wait_for(lambda: server.usr2_children(old, old_workers) == [], 30)
    if not stale_file.exists():  # gunicorn removed it this time: leave what a crash leaves
        stale_file.write_text(f"{failed[0]}\n")
    assert is_alive(old) and server.master_pid() == old

    server.set_broken(False)
    server.set_release("v2")
    deploy = server.deploy()
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
    stop the old master too: that was an outage before post_worker_init checked worker.alive).
    The import sleeps SLOW_BOOT s > TIMEOUT_S: the new generation cannot finish in time, however
    fast the machine; TIMEOUT_S leaves the script time to see the new master on a loaded one."""
    slow_boot, timeout_s = 8, 3
    server.set_release("v1")
    old = server.start()
    old_workers = server.worker_pids(old)
    server.set_slow_boot(slow_boot)
    server.set_release("v2")
    load = LoadGenerator(server.base_url, threads=2).start()
    try:
        deploy = server.deploy(timeout_s=timeout_s)
        m = re.search(
            r"stopping new master (\d+) \(TERM\); old master (\d+) is still serving", deploy.stderr
        )
        assert deploy.returncode == 1 and m, deploy.stdout + deploy.stderr
        stuck = int(m[1])
        assert int(m[2]) == old
        # the stuck workers finish their import ~SLOW_BOOT s after USR2, then the master exits
        assert wait_for(lambda: not is_alive(stuck), BOOT_TIMEOUT), "new master did not stop"
        load.wait_count(30, since=time.monotonic())  # the old master still serves
    finally:
        results = load.stop()
    print(summary(results), f"| deploy: {deploy.stdout.strip()!r} {deploy.stderr.strip()!r}")
    assert "hand-off:" not in server.log_tail(400)  # no worker sent the hand-off TERM
    assert is_alive(old) and server.master_pid() == old
    assert sorted(server.worker_pids(old)) == sorted(old_workers)
    assert not failures(results), summary(results)
    assert {r.release for r in results} == {"v1"}
    assert not Path(str(server.pidfile) + ".2").exists()


def drain_timeouts(boot_seconds: float | None) -> list[int]:
    """TIMEOUT_S values for the draining test, from this machine's measured boot time.

    The script's timeout must run out after the new generation handed off (so the old master
    is draining the held request), and the held request must not outlive gunicorn's `timeout`
    (before the hand-off) or `graceful_timeout` (after it): its worker would be killed. This
    test's server raises both to HELD_LIMIT s (the config's 30 s would cap TIMEOUT_S at ~24 s,
    less than a USR2 boot on a loaded machine). A retry with the largest value is for a boot
    slower than the estimate.
    """
    first = min(MAX_DRAIN_TIMEOUT, max(10, math.ceil(2 * (boot_seconds or 5.0) + 8)))
    return [first] if first >= MAX_DRAIN_TIMEOUT else [first, MAX_DRAIN_TIMEOUT]


HELD_LIMIT = 240  # s: this test's gunicorn timeout and graceful_timeout
MAX_DRAIN_TIMEOUT = 120  # s: < HELD_LIMIT minus the script's waits after its timeout


def test_deploy_timeout_while_the_old_master_drains_does_not_stop_the_new_one(
    server: GunicornServer,
) -> None:
    """A request longer than TIMEOUT_S keeps the old master draining after the hand-off TERM:
    the new master is then the only one accepting, and the script must leave it alone."""
    server.extra_args = ["--timeout", str(HELD_LIMIT), "--graceful-timeout", str(HELD_LIMIT)]
    server.set_release("v1")
    old = server.start()
    server.set_release("v2")
    load = LoadGenerator(server.base_url, threads=2).start()
    try:
        for attempt, timeout_s in enumerate(drain_timeouts(server.boot_seconds), 1):
            hold = Hold(server, f"long{attempt}").start()  # the long request is in an old worker
            assert ppid_of(hold.worker) == old
            deploy = server.deploy(timeout_s=timeout_s)
            handed_off = "USR2 hand-off:" in server.log_tail(2000)
            if handed_off or "stopping new master" not in deploy.stderr:
                break
            # the new generation was still booting when the timeout ran out (this machine was
            # slower than estimated): the script rightly stopped it. Not the case under test:
            # wait for it to exit and try again with a longer timeout.
            print(f"[drain] no hand-off within {timeout_s} s (boot {server.boot_seconds:.1f} s)")
            long_response = hold.release()
            m = re.search(r"stopping new master (\d+)", deploy.stderr)
            assert m, deploy.stderr
            stuck = int(m[1])
            assert wait_for(lambda: not is_alive(stuck), BOOT_TIMEOUT)  # noqa: B023 (called now)
            assert long_response.status_code == 200
        long_response = hold.release()  # after the script's verdict: the old master drains it
        assert wait_for(lambda: server.master_pid() not in (None, old), BOOT_TIMEOUT)
        load.wait_count(30, since=time.monotonic())
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
    assert long_response.status_code == 200  # drained, not cut off
    assert long_response.headers["X-Herald-Release"] == "v1"
    assert long_response.text == "released\n"
    assert not failures(results), summary(results)
    assert not is_alive(old)
    assert server.master_pid() == new and is_alive(new)
    assert title(new) == "gunicorn: master [herald]"
    assert {rel for rel, _ in probe(server)} == {"v2"}


def stop_old_master_once_armed(server: GunicornServer, old: int, timeout_s: int) -> Deploy:
    """Start the deploy script; SIGSTOP the old master as soon as the new generation armed its
    hand-off counter (before any new worker booted), then wait for the hand-off TERM (the
    counter is removed right before it) until the script's timeout. `deploy.handed_off`."""
    deploy = server.deploy_async(timeout_s)
    counters: list[Path] = []

    def armed() -> bool:
        counters.extend(server.run_dir.glob("usr2-booted.*"))
        return bool(counters) or deploy.proc.poll() is not None

    assert wait_for(armed, BOOT_TIMEOUT, interval=0.005), "the hand-off was never armed"
    assert counters, deploy.output()
    os.kill(old, signal.SIGSTOP)  # it cannot act on the hand-off TERM from now on
    deploy.handed_off = wait_for(lambda: not any(c.exists() for c in counters), timeout_s)
    return deploy


def test_deploy_timeout_with_the_hand_off_term_pending_does_not_stop_the_new_one(
    server: GunicornServer,
) -> None:
    """The new generation booted and its last worker sent TERM, but the old master has not
    acted on it yet when TIMEOUT_S runs out (a loaded machine; here: the old master is
    SIGSTOPped from the moment the hand-off is armed). Stopping the new master then would leave
    no master once the old one handles its TERM: the script must wait for it instead, and
    report the completed hand-off."""
    server.set_release("v1")
    old = server.start()
    server.set_release("v2")
    load = LoadGenerator(server.base_url, threads=2).start()
    deploy: Deploy | None = None
    try:
        for timeout_s in (max(10, math.ceil(2 * (server.boot_seconds or 5.0) + 8)), 60):
            deploy = stop_old_master_once_armed(server, old, timeout_s)
            if deploy.handed_off:
                break
            # this machine booted the new workers slower than the timeout: the script stops them
            # (the stuck case, tested above); let the old master go on, try a longer timeout
            os.kill(old, signal.SIGCONT)
            assert deploy.wait() == 1, deploy.output()
            print(f"[pending TERM] no hand-off within {timeout_s} s: retrying")
            m = re.search(r"stopping new master (\d+)", deploy.output())
            assert m, deploy.output()
            assert wait_for(lambda pid=int(m[1]): not is_alive(pid), BOOT_TIMEOUT)
        assert deploy is not None and deploy.handed_off, deploy and deploy.output()
        waiting = f"new master {deploy.new_master()} has handed off; waiting up to"
        assert wait_for(lambda: waiting in deploy.output(), timeout_s + 30), deploy.output()
        os.kill(old, signal.SIGCONT)  # the pending TERM is handled now: the old master stops
        rc = deploy.wait()
        load.wait_count(30, since=time.monotonic())
    finally:
        if is_alive(old):
            os.kill(old, signal.SIGCONT)
        if deploy is not None:
            deploy.kill()
        results = load.stop()
    out = deploy.output()
    print(summary(results), f"| deploy: {out!r}")
    assert rc == 0, out
    m = re.search(r"hand-off complete: old=(\d+) new=(\d+)", out)
    assert m and int(m[1]) == old, out
    new = int(m[2])
    assert "stopping new master" not in out
    assert not failures(results), summary(results)
    assert not is_alive(old)
    assert server.master_pid() == new and is_alive(new)
    assert title(new) == "gunicorn: master [herald]"
    assert {rel for rel, _ in probe(server)} == {"v2"}


def test_deploy_script_refuses_without_a_running_master(tmp_path: Path) -> None:
    pidfile = tmp_path / "gunicorn.pid"
    done = subprocess.run(
        [str(DEPLOY_USR2), str(pidfile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "no pidfile" in done.stderr
    pidfile.write_text("999999999\n")
    done = subprocess.run(
        [str(DEPLOY_USR2), str(pidfile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "not running" in done.stderr
