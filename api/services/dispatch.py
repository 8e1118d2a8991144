"""The dispatcher: claim due deliveries (lease them) and publish `herald.deliver` for each.

PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so several dispatchers get disjoint rows;
SQLite (quickstart) runs the same logic for a single dispatcher. A claimed row gets a new
`lease_token` and `next_attempt_at = now + LEASE_SECONDS`: if the task is lost or its worker
dies, the row is due again when the lease expires.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import String, cast, func, select, update

from api.extensions import db
from api.models import Delivery, MessageStatus
from api.models.common import utcnow
from api.services.outbox import DELIVER_TASK, new_lease_token
from api.services.queue import enqueue

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 500
DEFAULT_MAX_IN_FLIGHT = 2000  # bounds the queue so a lease never expires while queued


def _claim_postgresql(now: datetime, until: datetime, limit: int) -> list[tuple[str, str]]:
    """One statement: lock due rows (skipping locked ones), re-lease them, return id+token."""
    due = (
        select(Delivery.id)
        .where(Delivery.status == MessageStatus.SENDING, Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    token = func.replace(cast(func.gen_random_uuid(), String), "-", "")
    stmt = (
        update(Delivery)
        .where(Delivery.id == due.c.id)
        .values(lease_token=token, next_attempt_at=until, updated_at=now)
        .returning(Delivery.id, Delivery.lease_token)
    )
    rows = db.session.execute(stmt, execution_options={"synchronize_session": False})
    return [(str(row[0]), str(row[1])) for row in rows]


def _claim_generic(now: datetime, until: datetime, limit: int) -> list[tuple[str, str]]:
    """Select-then-update, guarded on the old next_attempt_at (single dispatcher)."""
    rows = db.session.execute(
        select(Delivery.id, Delivery.next_attempt_at)
        .where(Delivery.status == MessageStatus.SENDING, Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    ).all()
    claimed = []
    for delivery_id, old in rows:
        token = new_lease_token()
        result = db.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.next_attempt_at == old)
            .values(lease_token=token, next_attempt_at=until, updated_at=now),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append((delivery_id, token))
    return claimed


def count_in_flight(now: datetime, cap: int) -> int:
    """Leased rows whose lease is still running (counted up to `cap`, so it stays cheap)."""
    leased = (
        select(Delivery.id)
        .where(
            Delivery.status == MessageStatus.SENDING,
            Delivery.lease_token.is_not(None),
            Delivery.next_attempt_at > now,
        )
        .limit(cap)
        .subquery()
    )
    return int(db.session.execute(select(func.count()).select_from(leased)).scalar_one())


def claim_due(limit: int, now: datetime | None = None) -> list[tuple[str, str]]:
    """Lease up to `limit` due deliveries and commit; returns [(delivery_id, lease_token)]."""
    moment = now or utcnow()
    until = moment + timedelta(seconds=current_app.config["LEASE_SECONDS"])
    claim = _claim_postgresql if db.engine.dialect.name == "postgresql" else _claim_generic
    claimed = claim(moment, until, limit) if limit > 0 else []
    db.session.commit()
    return claimed


def dispatch_due(now: datetime | None = None) -> int:
    """Claim due deliveries (bounded by the in-flight cap) and publish them; returns the count."""
    config = current_app.config
    batch = int(config.get("DISPATCH_BATCH", DEFAULT_BATCH))
    max_in_flight = int(config.get("DISPATCH_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT))
    moment = now or utcnow()
    room = max_in_flight - count_in_flight(moment, max_in_flight)
    total = 0
    while room > 0:
        claimed = claim_due(min(batch, room), moment)
        for delivery_id, token in claimed:
            enqueue(DELIVER_TASK, delivery_id, token)
        total += len(claimed)
        room -= len(claimed)
        if len(claimed) < batch:
            break
    if total:
        logger.info("dispatch.claimed", extra={"deliveries": total})
    return total
