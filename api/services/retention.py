"""Payload retention: null the payloads of messages whose expiration has passed."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from api.extensions import db
from api.models import Message
from api.models.common import utcnow

logger = logging.getLogger(__name__)


def purge_expired_payloads(
    batch_size: int = 1000, max_batches: int = 100, now: datetime | None = None
) -> int:
    """Null expired payloads in committed batches; returns how many messages were purged.

    Safe to run twice at once (a `beat` on each host): each batch locks its rows and skips
    rows another run holds (PostgreSQL), and re-checks that a payload is still there, so the
    runs share the work, never wait on each other in a circle, and count each message once.
    """
    moment = now or utcnow()
    purged = 0
    for _ in range(max_batches):
        ids = (
            select(Message.id)
            .where(Message.expiration <= moment, Message.payload.is_not(None))
            .limit(batch_size)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        result = db.session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.payload.is_not(None))
            .values(payload=None),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()
        count = result.rowcount or 0  # type: ignore[attr-defined]
        purged += count
        if count < batch_size:
            break
    if purged:
        logger.info("retention.purged", extra={"messages": purged})
    return purged
