"""End-to-end fixtures: the app on a real port, a real Celery worker, a local receiver, the SDK.

These tests need committed rows (other threads read them), so they use `committed_db`, which
truncates every table afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask
from svix.api import Svix, SvixOptions
from werkzeug.serving import make_server

from api.services import tokens


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP receiver: records every POST and answers with `status` (changeable)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until at least `count` requests arrived (bounded), then return them."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"receiver got {len(self.requests)} requests, wanted {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1 with a random port."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            import time

            rx = state["rx"]
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if rx.delay:
                time.sleep(rx.delay)
            with rx.lock:
                rx.requests.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(rx.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["rx"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["rx"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def live_server(app: Flask, committed_db: None) -> Iterator[str]:
    """The test app served by werkzeug on a random loopback port; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api_token(app: Flask, committed_db: None) -> str:
    """A committed token for org `e2e`."""
    with app.app_context():
        _, plain = tokens.create_token("e2e")
    return plain


@pytest.fixture
def sdk(live_server: str, api_token: str) -> Svix:
    """The official svix SDK pointed at the live server (its own retries off)."""
    return Svix(api_token, SvixOptions(server_url=live_server, retry_schedule=[], timeout=10))
