"""Leases: short, renewed for the deliveries being sent, never for anyone else's."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from freezegun import freeze_time

from api.extensions import db
from api.models import Delivery, MessageStatus
from api.services.delivery.claim import claim_jobs
from api.services.delivery.leases import InFlight
from api.services.delivery.pump import pump
from tests.api.factories import seed
from tests.support import Receiver


def test_default_lease_is_seconds_not_minutes(app: Flask) -> None:
    assert app.config["LEASE_SECONDS"] <= 15  # a lost task costs seconds


def test_renew_extends_only_the_leases_held_with_their_token(
    app: Flask, db_session: object
) -> None:
    held, other, stale = seed("http://127.0.0.1:9/"), seed("http://127.0.0.1:9/"), seed("http://x/")
    for d in (held, other, stale):
        d.lease_token = f"token-{d.id}"
    db.session.commit()
    before = {d.id: d.next_attempt_at for d in (held, other, stale)}
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    registry = InFlight(app)
    registry.hold([(held.id, f"token-{held.id}"), (stale.id, "someone-elses-token")])
    with freeze_time(now):
        assert registry.renew(now) == 1
    registry.release([held.id, stale.id])
    db.session.expire_all()
    lease = timedelta(seconds=app.config["LEASE_SECONDS"])
    assert db.session.get(Delivery, held.id).next_attempt_at == now + lease  # type: ignore[union-attr]
    for d in (other, stale):
        assert db.session.get(Delivery, d.id).next_attempt_at == before[d.id]  # type: ignore[union-attr]
    assert registry.held == {}
    assert registry.renew(now) == 0


@pytest.mark.postgresql_only  # the renewal thread and the test read the same rows
def test_lease_of_a_slow_attempt_is_renewed_and_never_claimed_again(
    app: Flask, committed_db: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = 1.2  # renewed every 0.4 s; the receiver takes 3 leases to answer
    monkeypatch.setitem(app.config, "LEASE_SECONDS", lease)
    receiver.delay = 3 * lease
    with app.app_context():
        d = seed(receiver.url)
        delivery_id = d.id
        jobs = claim_jobs(10)
        db.session.remove()
    result: list[str] = []

    def attempt() -> None:
        with app.app_context():
            result.extend(pump().deliver(jobs))

    worker = threading.Thread(target=attempt)
    worker.start()
    claimed_meanwhile: list[str] = []
    deadline = time.monotonic() + 30
    while receiver.started == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    while worker.is_alive():  # while the receiver holds the request
        with app.app_context():
            claimed_meanwhile += [job.delivery_id for job in claim_jobs(10)]
            db.session.remove()
        time.sleep(0.2)
    worker.join()
    assert claimed_meanwhile == []  # the lease never ran out during the attempt
    assert result == ["success"] and len(receiver.requests) == 1
    with app.app_context():
        row = db.session.get(Delivery, delivery_id)
        assert row is not None and row.status == MessageStatus.SUCCESS
