"""Receivers that used to wedge a delivery, against the real worker process at the default
settings (HERALD_REQUEST_TIMEOUT 15 s, lease 10 s): each ends as a recorded attempt on the retry
schedule, is never sent to twice at once, and the worker's other endpoints are unaffected."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
import redis
from flask import Flask
from sqlalchemy import select

from api.extensions import db
from api.models import Delivery, MessageAttempt, MessageStatus
from api.services.delivery import outbox
from tests.api.factories import seed
from tests.e2e.processes import PrivateRedis, Stack
from tests.support import SLOW_MACHINE_TIMEOUT, Receiver, ScriptedReceiver, eventually

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]

HEALTHY = 40
TRICKLE = [(b"x", 1.0)] * 1000  # a byte a second, for far longer than the request timeout


def test_wedging_receivers_are_recorded_on_schedule_and_spare_the_others(
    app: Flask,
    receiver: Receiver,
    scripted_receiver: ScriptedReceiver,
    stack_factory: Callable[..., Stack],
    private_redis: PrivateRedis,
) -> None:
    timeout = app.config["REQUEST_TIMEOUT"]
    assert timeout == 15.0  # the default, as operators run it
    wedged = {
        "nul": scripted_receiver([(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nok\0\0ok", 0)]),
        "retry-after": scripted_receiver(
            [(b"HTTP/1.1 503 Busy\r\nRetry-After: \xb2\r\nContent-Length: 0\r\n\r\n", 0)]
        ),
        "trickled body": scripted_receiver(
            [(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 1.0), *TRICKLE]
        ),
        "trickled headers": scripted_receiver([(b"HTTP/1.1 200 OK\r\n", 1.0), *TRICKLE]),
    }
    stack = stack_factory(private_redis.url)
    stack.start("worker")
    stack.start("beat")
    publisher = redis.Redis.from_url(private_redis.url)
    with app.app_context():
        rows = {name: seed(url) for name, url in wedged.items()}
        wedged_ids = {name: d.id for name, d in rows.items()}
        outbox.wake(client=publisher)
        sent_at: dict[str, float] = {}
        for _ in range(HEALTHY):  # while two threads are held by the trickling receivers
            d = seed(receiver.url)
            outbox.wake(client=publisher)
            sent_at[d.msg_id] = time.monotonic()
            time.sleep(0.1)
    healthy = receiver.wait_for(HEALTHY, timeout=SLOW_MACHINE_TIMEOUT)
    slowest = max(r.at - sent_at[r.headers["webhook-id"]] for r in healthy)
    assert slowest < 5.0, f"a healthy delivery took {slowest:.1f} s beside the wedged ones"

    def first_attempts() -> dict[str, MessageAttempt] | None:
        with app.app_context():
            found = {}
            for name, delivery_id in wedged_ids.items():
                attempt = db.session.scalars(
                    select(MessageAttempt)
                    .where(MessageAttempt.delivery_id == delivery_id)
                    .order_by(MessageAttempt.id)
                ).first()
                if attempt is not None:
                    db.session.expunge(attempt)
                    found[name] = attempt
            db.session.remove()
            return found if len(found) == len(wedged) else None

    attempts = eventually(first_attempts, timeout=timeout + SLOW_MACHINE_TIMEOUT, what="attempts")
    nul = attempts["nul"]
    assert (nul.status, nul.response_status_code) == (MessageStatus.SUCCESS, 200)
    assert base64.b64decode(nul.response) == b"ok\0\0ok"
    busy = attempts["retry-after"]
    assert busy.response_status_code == 503 and busy.next_attempt_at is not None
    wait = (busy.next_attempt_at - busy.created_at).total_seconds()
    assert 3.5 <= wait <= 6.5, f"retry after {wait:.1f} s: the schedule's 5 s (±20 %)"
    for name in ("trickled body", "trickled headers"):
        cut = attempts[name]
        assert cut.response_status_code == 0 and "timeout" in cut.response, (name, cut.response)
        assert timeout * 1000 <= cut.response_duration_ms < (timeout + 5) * 1000, name
        assert cut.next_attempt_at is not None
        assert (cut.next_attempt_at - cut.created_at).total_seconds() >= 47  # 60 s - 20 %
    for name, url in wedged.items():
        path = url[url.index("/s") :]
        assert scripted_receiver.peak[path] == 1, (
            f"{name}: sent {scripted_receiver.peak[path]}x at once"
        )
    trickled = [wedged["trickled body"], wedged["trickled headers"]]
    assert [len(scripted_receiver.hits[u[u.index("/s") :]]) for u in trickled] == [1, 1]
    with app.app_context():
        done = db.session.get(Delivery, wedged_ids["nul"])
        assert done is not None and done.status == MessageStatus.SUCCESS
