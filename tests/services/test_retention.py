"""purge_expired_payloads(): nulls expired payloads in batches; the claim then cancels the
delivery."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import func, select, update

from api.extensions import db
from api.models import Delivery, Message, MessageStatus
from api.models.common import utcnow
from api.services.delivery.claim import claim_jobs
from api.services.retention import purge_expired_payloads
from tests.api.factories import seed


def test_purge_nulls_only_expired_payloads(db_session: object) -> None:
    expired = [seed("http://127.0.0.1:9/") for _ in range(5)]
    kept = seed("http://127.0.0.1:9/")
    for d in expired:
        db.session.get(Message, d.msg_id).expiration = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    db.session.commit()
    assert purge_expired_payloads(batch_size=2) == 5
    db.session.expire_all()
    assert all(db.session.get(Message, d.msg_id).payload is None for d in expired)  # type: ignore[union-attr]
    assert db.session.get(Message, kept.msg_id).payload is not None  # type: ignore[union-attr]
    assert purge_expired_payloads() == 0


def test_purge_after_retention_period_with_frozen_clock(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    with freeze_time(utcnow() + timedelta(days=89)):
        assert purge_expired_payloads() == 0
    with freeze_time(utcnow() + timedelta(days=91)):
        assert purge_expired_payloads() == 1
    assert claim_jobs(10) == []  # nothing to send: the claim finishes the row
    db.session.expire_all()
    assert db.session.get(Delivery, d.id).status == MessageStatus.CANCELED  # type: ignore[union-attr]


@pytest.mark.postgresql_only  # two connections purging at once
def test_two_schedulers_purging_at_once_share_the_work(app: Flask, committed_db: None) -> None:
    """A `beat` on each host runs the hourly purge at the same moment: every expired payload
    is purged once between them, nothing else is touched, neither run fails."""
    with app.app_context():
        expired = [seed("http://127.0.0.1:9/", commit=False) for _ in range(600)]
        kept = seed("http://127.0.0.1:9/", commit=False)
        db.session.flush()
        db.session.execute(
            update(Message)
            .where(Message.id.in_([d.msg_id for d in expired]))
            .values(expiration=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        kept_id = kept.msg_id
        db.session.remove()
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            try:
                start.wait()
                counts.append(purge_expired_payloads(batch_size=25))
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and sum(counts) == 600, (counts, errors)
    with app.app_context():
        left = db.session.scalar(
            select(func.count()).select_from(Message).where(Message.payload.is_not(None))
        )
        assert left == 1 and db.session.get(Message, kept_id).payload is not None  # type: ignore[union-attr]
        db.session.remove()
