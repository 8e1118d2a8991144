"""The Celery task path with a real worker over the real Redis."""

from __future__ import annotations

import time
import uuid

from flask import Flask

from api.extensions import get_redis
from api.services.queue import enqueue


def test_enqueue_by_name_runs_task_in_real_worker(app: Flask, celery_worker: object) -> None:
    token = uuid.uuid4().hex
    with app.app_context():
        assert enqueue("herald.ping", token) is True
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and get_redis().get(f"herald:ping:{token}") is None:
            time.sleep(0.05)
        assert get_redis().get(f"herald:ping:{token}") == b"pong"


def test_enqueue_returns_false_when_broker_is_down(app: Flask) -> None:
    from api import create_app
    from tests.conftest import test_overrides

    broken = create_app(test_overrides(REDIS_URL="redis://127.0.0.1:1/0"))
    with broken.app_context():
        started = time.monotonic()
        assert enqueue("herald.ping", "x") is False
        assert time.monotonic() - started < 10
