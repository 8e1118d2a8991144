"""Real processes for the e2e tests: a private redis-server (restartable, empty) and the
Procfile's worker and beat as subprocesses on the test database, stopped by process group.
Their fixtures are in tests/e2e/conftest.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import DATABASE_URL
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BOOT_TIMEOUT = 90.0  # a celery worker or redis-server starting on a loaded 2-core machine
POOL = os.environ.get("HERALD_FAULT_POOL", "threads")  # as in the Procfile


def start_redis(port: int, log: Path) -> subprocess.Popen[bytes]:
    """A private, memory-only redis-server (restarting it really loses everything)."""
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",  # a replica's full sync writes an RDB file even without --save
            str(log.parent),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    raise AssertionError("redis-server did not start")


class Stack:
    """worker + beat subprocesses for one private Redis; stopped by process group."""

    def __init__(self, redis_url: str, tmp: Path, concurrency: int = 4) -> None:
        self.tmp, self.concurrency = tmp, concurrency
        self.env = {
            **os.environ,
            "HERALD_ENV": "testing",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": redis_url,  # lease, dispatch interval, timeouts: the defaults
            "PYTHONPATH": str(ROOT),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        base = [str(BIN / "celery"), "-A", "workers.main"]
        args = {
            "worker": [
                "worker",
                "-P",
                POOL,
                "-c",
                str(self.concurrency),
                "-Q",
                "herald,herald.dispatch",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            "beat": ["beat", "--schedule", str(self.tmp / "beat-schedule")],
        }[name]
        self.procs[name] = subprocess.Popen(
            [*base, *args, "--loglevel", "WARNING"],
            cwd=ROOT,
            env=self.env,
            stdout=(self.tmp / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)  # the worker and any pool children
        proc.wait(60)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


class PrivateRedis:
    """A private redis-server on a free port that a test may kill and start again (empty)."""

    def __init__(self, log: Path) -> None:
        self.port, self.log = free_port(), log
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.procs = [start_redis(self.port, log)]

    def kill(self) -> None:
        self.procs[-1].kill()  # queued and unacked tasks are gone with it
        self.procs[-1].wait(10)

    def restart(self) -> None:
        self.procs.append(start_redis(self.port, self.log))
