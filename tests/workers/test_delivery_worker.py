"""herald.pump / herald.dispatch_due through a real Celery worker on the real Redis."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask

from api.extensions import db, get_redis
from api.models import Delivery, MessageAttempt
from api.models.common import utcnow
from api.services.delivery import outbox
from api.services.delivery.claim import dispatch_due
from api.services.queue import QUEUE, enqueue
from tests.api.factories import seed
from tests.support import Receiver, eventually, no_pump_awake


def _wait_status(app: Flask, delivery_id: str, status: int, timeout: float = 15) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            row = db.session.get(Delivery, delivery_id)
            if row is not None and row.status == status:
                return row
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} never reached status {status}")


def _asleep(app: Flask) -> None:
    """No pump awake, nothing queued (what earlier tests left)."""
    with app.app_context():
        no_pump_awake(get_redis())


def test_a_burst_is_delivered_on_one_wake_up(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    _asleep(app)
    with app.app_context():
        ids = [seed(receiver.url).id for _ in range(20)]
        published = [outbox.wake() for _ in ids]  # each message's commit wakes a pump
    assert published.count(True) == 1  # the first one did; the rest found it awake
    for delivery_id in ids:
        _wait_status(app, delivery_id, 0)
    assert len(receiver.wait_for(20)) == 20


def test_a_lost_wake_up_is_recovered_by_the_dispatcher(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    _asleep(app)
    with app.app_context():
        d = seed(receiver.url)  # committed, its wake-up lost with Redis
        d_id = d.id
        assert dispatch_due() == 1
    _wait_status(app, d_id, 0)
    assert len(receiver.wait_for(1)) == 1


def test_duplicate_wake_ups_send_once(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    _asleep(app)
    with app.app_context():
        d = seed(receiver.url)
        d_id = d.id
        for _ in range(3):
            enqueue("herald.pump")
    _wait_status(app, d_id, 0)
    with app.app_context():  # the other wake-ups ran too, each loop to its end
        redis, loop = get_redis(), app.extensions["herald_pump"]
        assert eventually(lambda: redis.llen(QUEUE) == 0 and not loop.running, timeout=10)
        count = db.session.query(MessageAttempt).filter_by(delivery_id=d_id).count()
    assert len(receiver.requests) == 1
    assert count == 1


def test_a_row_whose_lease_ran_out_is_sent_again(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    _asleep(app)
    with app.app_context():
        d = seed(receiver.url)
        d.lease_token, d.next_attempt_at = "dead-worker", utcnow() - timedelta(seconds=1)
        db.session.commit()
        d_id = d.id
        assert dispatch_due() == 1
    _wait_status(app, d_id, 0)
    assert len(receiver.wait_for(1)) == 1
