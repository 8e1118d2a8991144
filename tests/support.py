"""Test support shared by every test package: what the local webhook receiver records."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# How long a test waits for something that normally takes well under a second (a delivery, an
# attempt being recorded): sized for a slow, loaded 2-core machine. Waits poll and return as soon
# as the condition holds, so a long deadline costs nothing when the machine is fast.
SLOW_MACHINE_TIMEOUT = 60.0


def eventually(
    check: Callable[[], T | None], timeout: float = SLOW_MACHINE_TIMEOUT, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy (bounded); returns that."""
    start = time.monotonic()
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() - start >= timeout:
            raise AssertionError(f"{what or 'condition'} not met in {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the receiver recorded it


@dataclass
class Receiver:
    """A local HTTP receiver: records every POST and answers with `status` (changeable).

    `statuses` plans the answers by arrival: the Nth request recorded gets `statuses[N-1]`, the
    ones after the plan get `status`. (For sequential requests: a test that flips `status` after
    seeing request N races with request N's own answer, which is read right after recording it.)
    """

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    started: int = 0  # requests whose handling began (counted before `delay`)
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: list[int] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = SLOW_MACHINE_TIMEOUT) -> list[Received]:
        """Block until at least `count` requests arrived (bounded), then return them."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"receiver got {len(self.requests)} requests, wanted {count} "
            f"(waited {time.monotonic() - start:.1f} s)"
        )

    def webhook_ids(self) -> list[str]:
        """The `webhook-id` of every request so far, in arrival order (with repeats)."""
        with self.lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]


def _status(self: Receiver) -> int:
    # the conftest receiver reads `status` right after appending the request it answers
    n = len(self.requests)
    if 0 < n <= len(self.statuses):
        return self.statuses[n - 1]
    return self._status  # type: ignore[attr-defined]


def _set_status(self: Receiver, value: int) -> None:
    self._status = value  # type: ignore[attr-defined]


# after @dataclass: __init__ keeps `status: int = 200` and assigns through the property
Receiver.status = property(_status, _set_status)  # type: ignore[assignment]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def quickstart_environ() -> dict[str, str]:
    """os.environ as a newcomer's shell would have it for `make run`: nothing steering Herald
    or the tests (HERALD_*, TEST_*, DATABASE_URL, REDIS_URL, PORT) nor an outer make."""
    drop = ("DATABASE_URL", "REDIS_URL", "PORT", "MAKEFLAGS")
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HERALD_", "TEST_")) and k not in drop
    }


@dataclass
class Run:
    """A quickstart command (`make run`, `herald devserver`) in its own session (process
    group, like a terminal's foreground job), its output collected by a thread."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, argv: list[str], cwd: Path) -> Run:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=quickstart_environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        run = cls(process)

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                run.lines.append(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()
        return run

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := regex.search(line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines[-60:]))

    def group_ids(self) -> set[int]:
        """The process groups the devserver started (each child is a session leader)."""
        return {int(m) for m in re.findall(r"\| \w+ started \(pid (\d+)\)", "\n".join(self.lines))}


class ScriptedReceiver:
    """A raw TCP receiver on 127.0.0.1 answering with scripted bytes: call it with
    [(bytes, seconds to wait after them), ...] to get a URL; each request is read whole, then
    the script is played (odd bytes, odd headers, a trickle) and the connection closed.
    `hits[path]` has each request's arrival time, `peak[path]` the most served at once."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.scripts: dict[str, list[tuple[bytes, float]]] = {}
        self.hits: dict[str, list[float]] = {}
        self.peak: dict[str, int] = {}
        self.active: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.server = threading.Thread(target=self._serve, daemon=True)
        self.server.start()

    def __call__(self, steps: list[tuple[bytes, float]]) -> str:
        path = f"/s{len(self.scripts)}"
        self.scripts[path] = steps
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def close(self) -> None:
        self.stop.set()
        self.server.join(timeout=5)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            while length and len(body) < int(length.group(1)):
                body += conn.recv(65536)
            path = head.split(b" ", 2)[1].decode()
            with self.lock:
                self.hits.setdefault(path, []).append(time.monotonic())
                self.active[path] = self.active.get(path, 0) + 1
                self.peak[path] = max(self.peak.get(path, 0), self.active[path])
            try:
                for piece, pause in self.scripts.get(path, []):
                    conn.sendall(piece)
                    if self.stop.wait(pause):
                        return
            except OSError:
                return  # the client gave up (its deadline)
            finally:
                with self.lock:
                    self.active[path] -= 1


def no_pump_awake(client: Any) -> None:
    """Nothing queued and no pump awake (what earlier tests left), as this process sees it
    too: its memory of a recent look at the awake flag (outbox.WAKE_WINDOW) has lapsed."""
    from api.services.delivery import outbox
    from api.services.queue import QUEUE

    client.delete(QUEUE, outbox.AWAKE_KEY)
    time.sleep(outbox.WAKE_WINDOW)


# Svix's operational-webhook event schemas (OpenAPI 3.0), vendored self-contained in
# tests/data/svix_operational_events.json (tests/services/test_operational_events.py checks it
# against ../shared/svix/openapi-cloud.json where that is present).
SVIX_EVENT_SCHEMAS = Path(__file__).resolve().parent / "data" / "svix_operational_events.json"
SVIX_EVENTS = {
    "endpoint.created": "EndpointCreatedEvent",
    "endpoint.updated": "EndpointUpdatedEvent",
    "endpoint.deleted": "EndpointDeletedEvent",
    "endpoint.disabled": "EndpointDisabledEvent",
    "endpoint.enabled": "EndpointEnabledEvent",
    "message.attempt.failing": "MessageAttemptFailingEvent",
    "message.attempt.exhausted": "MessageAttemptExhaustedEvent",
    "message.attempt.recovered": "MessageAttemptRecoveredEvent",
    "background_task.finished": "BackgroundTaskFinishedEvent",
}


def svix_event_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """{event type: its JSON Schema}: the spec's event schema with every $ref inlined and
    OpenAPI's `nullable` written as JSON Schema's null type."""
    components = spec["components"]["schemas"]

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return {**inline(components[node["$ref"].split("/")[-1]]), **inline(extra)}
        out = {k: inline(v) for k, v in node.items() if k not in ("example", "description")}
        if out.pop("nullable", False):
            out = {"anyOf": [out, {"type": "null"}]}
        return out

    return {event: inline(components[name]) for event, name in SVIX_EVENTS.items()}


def svix_event_errors(body: dict[str, Any]) -> list[str]:
    """Why `body` is not a valid Svix operational webhook of its `type` ([] when it is)."""
    import jsonschema

    schemas = json.loads(SVIX_EVENT_SCHEMAS.read_text())
    schema = schemas.get(body.get("type"))
    if schema is None:
        return [f"unknown event type {body.get('type')!r}"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
