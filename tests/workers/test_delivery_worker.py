"""herald.deliver / herald.dispatch_due through a real Celery worker on the real Redis."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask

from api.extensions import db
from api.models import Delivery, MessageAttempt
from api.models.common import utcnow
from api.services.delivery import outbox
from api.services.delivery.claim import dispatch_due
from api.services.queue import enqueue
from tests.api.factories import seed
from tests.support import Receiver


def _wait_status(app: Flask, delivery_id: str, status: int, timeout: float = 15) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            row = db.session.get(Delivery, delivery_id)
            if row is not None and row.status == status:
                return row
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} never reached status {status}")


def test_published_delivery_is_sent_by_worker(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    with app.app_context():
        d = seed(receiver.url)
        d_id = d.id
        assert outbox.publish([d]) == 1
    _wait_status(app, d_id, 0)
    assert len(receiver.wait_for(1)) == 1


def test_lost_publish_is_recovered_by_dispatcher(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    with app.app_context():
        d = seed(receiver.url)  # committed, never published: the fast path was lost
        d.next_attempt_at = utcnow() - timedelta(seconds=1)  # lease ran out
        db.session.commit()
        d_id = d.id
        assert dispatch_due() == 1
    _wait_status(app, d_id, 0)
    assert len(receiver.wait_for(1)) == 1


def test_stale_duplicate_task_sends_nothing(
    app: Flask, celery_worker: object, receiver: Receiver
) -> None:
    with app.app_context():
        d = seed(receiver.url)
        d_id, token = d.id, d.lease_token
        enqueue("herald.deliver", d_id, token)
        enqueue("herald.deliver", d_id, token)  # the same claim twice
        enqueue("herald.deliver", d_id, "old-claim")
    _wait_status(app, d_id, 0)
    time.sleep(0.5)
    assert len(receiver.requests) == 1
    with app.app_context():
        count = db.session.query(MessageAttempt).filter_by(delivery_id=d_id).count()
    assert count == 1
