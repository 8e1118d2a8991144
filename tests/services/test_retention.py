"""purge_expired_payloads(): nulls expired payloads in batches; the claim then cancels the
delivery."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time

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
