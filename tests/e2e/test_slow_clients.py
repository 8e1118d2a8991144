"""Slow clients cannot stall the web tier: with 50 connections stopped in the middle of their
headers, the real `gunicorn -c gunicorn.conf.py` (default worker count and class) still answers
`/api/v1/health/ping` and a message create within 100 ms each (issue 11)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from api.services import tokens
from tests.conftest import DATABASE_URL
from tests.e2e.gunicorn_harness import GunicornServer

pytestmark = pytest.mark.slow

STALLED = 50
BOUND = 0.100  # s


@pytest.fixture
def server(
    app: Flask, committed_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    """The real web tier, started once the test database is there."""
    run_dir = tmp_path_factory.mktemp("slow") / "run"
    srv = GunicornServer(run_dir, app=None, workers=5, database_url=DATABASE_URL)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        print(f"--- gunicorn log ({srv.log_path}) ---\n{srv.log_tail()}")


def stall(port: int) -> socket.socket:
    """A connection that sends half a request's headers and then nothing."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(b"POST /api/v1/app/x/msg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    return conn


def timed(method: str, url: str, **kwargs: object) -> tuple[float, int]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
    return time.monotonic() - started, response.status_code


def test_fifty_stalled_connections_do_not_delay_ping_or_message_create(
    server: GunicornServer, app: Flask
) -> None:
    with app.app_context():
        _, token = tokens.create_token("slow-clients")
    auth = {"Authorization": f"Bearer {token}"}
    made = requests.post(
        f"{server.base_url}/api/v1/app", json={"name": "s", "uid": "s"}, headers=auth, timeout=10
    )
    assert made.status_code == 201, made.text
    app_id = made.json()["id"]
    stalled = [stall(server.port) for _ in range(STALLED)]
    try:
        time.sleep(0.5)  # every stalled connection reached a worker
        pings = [timed("GET", f"{server.base_url}/api/v1/health/ping") for _ in range(5)]
        body = {"eventType": "user.signup", "payload": {"a": 1}}
        url = f"{server.base_url}/api/v1/app/{app_id}/msg"
        creates = [timed("POST", url, json=body, headers=auth) for _ in range(5)]
    finally:
        for conn in stalled:
            conn.close()
    assert [code for _, code in pings] == [204] * 5
    assert [code for _, code in creates] == [202] * 5
    slowest = max(seconds for seconds, _ in pings + creates)
    assert slowest < BOUND, f"slowest answer {slowest * 1000:.0f} ms beside {STALLED} stalled"
