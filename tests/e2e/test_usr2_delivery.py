"""A USR2 reload of the web tier while messages are being accepted and delivered loses nothing.

Real gunicorn (tests/e2e/gunicorn_harness.py), a real `celery worker` + `celery beat`
(tests/e2e/test_faults.py's Stack) on the harness database and Redis, and a local receiver:
every message answered 202 during the hand-off must reach the receiver. A message that has not
arrived is reported as late (its delivery row is still open) or lost (tests/e2e/settle.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.gunicorn_harness import (
    REQUEST_TIMEOUT,
    GunicornServer,
    ensure_database,
    make_token,
    wait_for,
)
from tests.e2e.settle import settle
from tests.e2e.test_faults import Stack
from tests.support import Receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def web(tmp_path: Path) -> Iterator[GunicornServer]:
    server = GunicornServer(tmp_path / "run", database_url=ensure_database())
    try:
        yield server
    finally:
        server.stop()


def produce(
    base: str, token: str, stop: threading.Event, accepted: list[str], errors: list[str]
) -> None:
    """POST messages back to back (a new connection each) until told to stop."""
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    while not stop.is_set():
        try:
            r = requests.post(
                f"{base}/api/v1/app/usr2/msg",
                headers=headers,
                timeout=REQUEST_TIMEOUT,
                json={"eventType": "usr2.test", "payload": {"n": len(accepted)}},
            )
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)
            continue
        if r.status_code == 202:
            accepted.append(r.json()["id"])
        else:
            errors.append(str(r.status_code))


def test_usr2_reload_during_delivery_loses_no_message(
    web: GunicornServer, receiver: Receiver, tmp_path: Path
) -> None:
    web.set_release("v1")
    web.start()
    token = make_token(web, "usr2")
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        requests.post(
            f"{web.base_url}/api/v1/app",
            headers=auth,
            json={"name": "USR2", "uid": "usr2"},
            timeout=REQUEST_TIMEOUT,
        ).status_code
        == 201
    )
    assert (
        requests.post(
            f"{web.base_url}/api/v1/app/usr2/endpoint",
            headers=auth,
            json={"url": receiver.url},
            timeout=REQUEST_TIMEOUT,
        ).status_code
        == 201
    )
    stack = Stack(web.env["REDIS_URL"], tmp_path)
    stack.env["DATABASE_URL"] = web.env["DATABASE_URL"]
    accepted: list[str] = []
    errors: list[str] = []
    stop = threading.Event()
    producers = [
        threading.Thread(target=produce, args=(web.base_url, token, stop, accepted, errors))
        for _ in range(4)
    ]
    try:
        stack.start("worker")
        stack.start("beat")
        for thread in producers:
            thread.start()
        # messages accepted (and flowing to the receiver) before and after the hand-off
        assert wait_for(lambda: len(accepted) >= 100 and len(receiver.requests) > 0, 120)
        web.set_release("v2")
        deploy = web.deploy()
        after = len(accepted)
        assert wait_for(lambda: len(accepted) >= after + 100, 120)
        stop.set()
        for thread in producers:
            thread.join(REQUEST_TIMEOUT + 30)
        assert not any(t.is_alive() for t in producers), "a producer is stuck"
        outcome = settle(receiver, accepted, web.env["DATABASE_URL"], label="usr2 delivery")
    finally:
        stop.set()
        stack.stop_all()
    print(
        f"\nusr2 delivery: accepted={len(accepted)} (after the hand-off {len(accepted) - after}) "
        f"{outcome.summary()} errors={len(errors)} deploy={deploy.stdout.strip()!r}"
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert errors == []
    assert len(accepted) >= 50
    assert outcome.ok, outcome.problems()  # every accepted message was delivered
