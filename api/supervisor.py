"""Supervising child processes: each in its own session (process group), output prefixed,
all stopped together; and the requests to stop (signals, an interrupted `make`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO


@dataclass
class Child:
    """One supervised process: its own session (process group), output read by a thread."""

    name: str
    command: str
    ready: re.Pattern[str] | None = None
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    up: threading.Event = field(default_factory=threading.Event)


class Supervisor:
    """Start children in their own process groups, prefix their output, stop them all."""

    def __init__(
        self, directory: Path, env: dict[str, str], out: TextIO, name: str, width: int
    ) -> None:
        self.directory = directory
        self.env = env
        self.out = out
        self.name = name  # the prefix of the supervisor's own lines
        self.width = width
        self.children: list[Child] = []
        self.lock = threading.Lock()

    def say(self, name: str, text: str) -> None:
        """One prefixed line, whole (reader threads write concurrently)."""
        self.write(f"{datetime.now():%H:%M:%S} {name:<{self.width}} | {text}\n")

    def write(self, text: str) -> None:
        """Write whole lines; a closed stdout (`make run | head`) must not stop the stopping."""
        with self.lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):
                pass

    def start(self, name: str, command: str, ready: re.Pattern[str] | None = None) -> Child:
        """Run `command` through the shell, exec'd so the signals reach the program itself;
        `child.up` is set when a line of its output matches `ready`."""
        child = Child(name, command, ready)
        child.process = subprocess.Popen(
            f"exec {command}",
            shell=True,
            cwd=self.directory,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        self.children.append(child)
        self.say(self.name, f"{name} started (pid {child.process.pid}): {command}")
        return child

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in child.process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.say(child.name, line)
            if child.ready is not None and child.ready.search(line):
                child.up.set()

    def exited(self) -> Child | None:
        """A child that exited on its own, if any."""
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def stop(self, last: tuple[str, ...] = (), timeout: float = 20.0) -> None:
        """SIGTERM to every child together except those named in `last` (a broker the others
        still talk to on their way out), then to those; SIGKILL for what is left after
        `timeout` seconds."""
        first = [c for c in self.children if c.name not in last]
        then = [c for c in self.children if c.name in last]
        for group in (first, then):
            for child in group:
                self._signal(child, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for child in group:
                if not self._wait_group(child, deadline):
                    self.say(self.name, f"{child.name} did not stop in {timeout:.0f} s: SIGKILL")
                    self._signal(child, signal.SIGKILL)
                    self._wait_group(child, time.monotonic() + 5.0)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2.0)

    def _signal(self, child: Child, signum: int) -> None:
        assert child.process is not None
        try:
            os.killpg(child.process.pid, signum)
        except ProcessLookupError:
            pass

    def _wait_group(self, child: Child, deadline: float) -> bool:
        """Reap the child and wait until no process of its group is left (gunicorn workers)."""
        assert child.process is not None
        while time.monotonic() < deadline:
            child.process.poll()
            try:
                os.killpg(child.process.pid, 0)
            except ProcessLookupError:
                child.process.wait()
                return True
            time.sleep(0.1)
        return False


class StopRequest:
    """Set by SIGINT/SIGTERM/SIGHUP, or when the `make` that started us is interrupted."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.parent = os.getppid()
        self._parent_hits = 0

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.reason = self.reason or signal.Signals(signum).name

    def requested(self) -> bool:
        """Whether to stop now; also polls the parent process (see parent_interrupted)."""
        if self.reason is None and os.getppid() != self.parent:
            self.reason = "parent process exited"
        if self.reason is None and parent_interrupted(self.parent):
            self._parent_hits += 1
            if self._parent_hits >= 2:  # two polls apart: not a transient signal mask
                self.reason = "make was interrupted"
        else:
            self._parent_hits = 0
        return self.reason is not None


def parent_interrupted(ppid: int) -> bool:
    """True when our parent is GNU make sitting in its SIGINT handler.

    make forwards SIGTERM to its recipe but not SIGINT: after `kill -INT <make>` it waits for
    the recipe inside its handler, with SIGINT blocked, forever. That blocked SIGINT is the
    only trace of it, so it is read from /proc (Linux; elsewhere this returns False).
    """
    try:
        comm = Path(f"/proc/{ppid}/comm").read_text().strip()
        if comm not in ("make", "gmake"):
            return False
        status = Path(f"/proc/{ppid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False
