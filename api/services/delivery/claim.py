"""The dispatcher: claim due deliveries (lease them) and publish `herald.deliver` for each.

PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so several dispatchers get disjoint rows;
SQLite (quickstart) runs the same logic for a single dispatcher. A claimed row gets a new
`lease_token` and `next_attempt_at = now + LEASE_SECONDS`: if the task is lost or its worker
dies, the row is due again when the lease expires. Claims are fair: at most
ENDPOINT_CONCURRENCY leases per endpoint, so one dead endpoint's backlog stays in the table.

A Redis that restarted empty lost every queued task at once: the dispatcher notices (its
marker key `BROKER_MARK` is gone) and makes the running leases in their second half due right
away (`release_if_broker_forgot`), so they are re-published on that pass instead of each
waiting out its lease.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Row, func, select, text, update

from api.extensions import db, get_redis
from api.models import Delivery, Message, MessageStatus
from api.models.common import utcnow
from api.services.delivery.leases import lease_deadline, lease_seconds
from api.services.delivery.outbox import DELIVER_TASK, new_lease_token
from api.services.queue import QUEUE, enqueue_many

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 500
DEFAULT_MAX_IN_FLIGHT = 2000  # bounds the queue so a lease never expires while queued
DEFAULT_ENDPOINT_CONCURRENCY = 4
BROKER_MARK = "herald:broker-mark"  # set by the dispatcher; gone = Redis lost its data


# Fair claim: every endpoint with due work gets at most `per_endpoint` leases in flight (so a
# dead endpoint's backlog is never handed out just to be parked again), oldest rows first.
_CLAIM_PG = text("""
WITH leased AS (
  SELECT endpoint_id, count(*) AS n FROM delivery
   WHERE status = 3 AND lease_token IS NOT NULL AND next_attempt_at > :now
   GROUP BY endpoint_id),
due_endpoints AS (
  SELECT DISTINCT endpoint_id FROM delivery WHERE status = 3 AND next_attempt_at <= :now),
candidates AS (
  SELECT c.id FROM due_endpoints e
  LEFT JOIN leased l ON l.endpoint_id = e.endpoint_id
  CROSS JOIN LATERAL (
    SELECT d.id, d.next_attempt_at FROM delivery d
     WHERE d.endpoint_id = e.endpoint_id AND d.status = 3 AND d.next_attempt_at <= :now
     ORDER BY d.next_attempt_at
     LIMIT GREATEST(CAST(:per_endpoint AS integer) - COALESCE(l.n, 0), 0)) c
  ORDER BY c.next_attempt_at LIMIT :limit),
locked AS (
  SELECT id FROM delivery
   WHERE id IN (SELECT id FROM candidates) AND status = 3 AND next_attempt_at <= :now
   FOR UPDATE SKIP LOCKED)
UPDATE delivery d SET lease_token = replace(CAST(gen_random_uuid() AS text), '-', ''),
       next_attempt_at = :until, updated_at = :now
  FROM locked WHERE d.id = locked.id
RETURNING d.id, d.lease_token
""")

_CLAIM_NEXT_PG = text("""
WITH upd AS (
  UPDATE delivery SET lease_token = replace(CAST(gen_random_uuid() AS text), '-', ''),
         next_attempt_at = :until, updated_at = :now
   WHERE id = (SELECT id FROM delivery
                WHERE endpoint_id = :endpoint_id AND status = 3 AND next_attempt_at <= :now
                ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id, lease_token, msg_id, trigger_type, attempt_count)
SELECT upd.id, upd.lease_token, upd.msg_id, upd.trigger_type, upd.attempt_count, m.payload
  FROM upd JOIN message m ON m.id = upd.msg_id
""")


def _claim_postgresql(
    now: datetime, until: datetime, limit: int, per_endpoint: int
) -> list[tuple[str, str]]:
    """One statement: pick fairly, lock (skipping locked rows), re-lease, return id+token."""
    params = {"now": now, "until": until, "limit": limit, "per_endpoint": per_endpoint}
    return [(str(r[0]), str(r[1])) for r in db.session.execute(_CLAIM_PG, params)]


def _lease(delivery_id: str, old: datetime | None, now: datetime, until: datetime) -> str | None:
    """Lease one row if its next_attempt_at is still `old` (single-dispatcher guard)."""
    token = new_lease_token()
    result = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.next_attempt_at == old)
        .values(lease_token=token, next_attempt_at=until, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    return token if result.rowcount else None  # type: ignore[attr-defined]


def _claim_generic(
    now: datetime, until: datetime, limit: int, per_endpoint: int
) -> list[tuple[str, str]]:
    """The same fair selection in Python (SQLite quickstart: one dispatcher)."""
    leased = dict(
        db.session.execute(
            select(Delivery.endpoint_id, func.count())
            .where(
                Delivery.status == MessageStatus.SENDING,
                Delivery.lease_token.is_not(None),
                Delivery.next_attempt_at > now,
            )
            .group_by(Delivery.endpoint_id)
        ).all()
    )
    rows = db.session.execute(
        select(Delivery.id, Delivery.endpoint_id, Delivery.next_attempt_at)
        .where(Delivery.status == MessageStatus.SENDING, Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(max(limit * 20, 1000))
    ).all()
    claimed: list[tuple[str, str]] = []
    for delivery_id, endpoint_id, old in rows:
        if len(claimed) >= limit or leased.get(endpoint_id, 0) >= per_endpoint:
            continue
        token = _lease(delivery_id, old, now, until)
        if token:
            claimed.append((delivery_id, token))
            leased[endpoint_id] = leased.get(endpoint_id, 0) + 1
    return claimed


def claim_next_for_endpoint(endpoint_id: str, commit: bool = True) -> Row[Any] | None:
    """Lease the endpoint's oldest due delivery (a worker going on with its run).

    Returns (id, lease_token, msg_id, trigger_type, attempt_count, payload) or None. With
    commit=False it joins the caller's transaction: recording a result and taking the next
    row commit together, so the endpoint's lease count never dips between the two.
    """
    now = utcnow()
    until = lease_deadline(now)
    claimed: Any
    if db.engine.dialect.name == "postgresql":
        claimed = db.session.execute(
            _CLAIM_NEXT_PG, {"endpoint_id": endpoint_id, "now": now, "until": until}
        ).first()
    else:
        found = db.session.execute(
            select(Delivery.id, Delivery.next_attempt_at)
            .where(
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == MessageStatus.SENDING,
                Delivery.next_attempt_at <= now,
            )
            .order_by(Delivery.next_attempt_at)
            .limit(1)
        ).first()
        token = _lease(found[0], found[1], now, until) if found else None
        claimed = (
            db.session.execute(
                select(
                    Delivery.id,
                    Delivery.lease_token,
                    Delivery.msg_id,
                    Delivery.trigger_type,
                    Delivery.attempt_count,
                    Message.payload,
                )
                .join(Message, Message.id == Delivery.msg_id)
                .where(Delivery.id == found[0])
            ).first()
            if found and token
            else None
        )
    if commit:
        db.session.commit()
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


def queued_tasks() -> int:
    """Tasks waiting in the broker's delivery queue."""
    return int(get_redis().llen(QUEUE))


def per_endpoint_limit() -> int:
    """Concurrent deliveries allowed per endpoint (HERALD_ENDPOINT_CONCURRENCY, default 4)."""
    return int(current_app.config.get("ENDPOINT_CONCURRENCY", DEFAULT_ENDPOINT_CONCURRENCY))


def claim_due(limit: int, now: datetime | None = None) -> list[tuple[str, str]]:
    """Lease up to `limit` due deliveries and commit; returns [(delivery_id, lease_token)]."""
    moment = now or utcnow()
    until = lease_deadline(moment)
    claim = _claim_postgresql if db.engine.dialect.name == "postgresql" else _claim_generic
    claimed = claim(moment, until, limit, per_endpoint_limit()) if limit > 0 else []
    db.session.commit()
    return claimed


def release_if_broker_forgot(now: datetime) -> int:
    """When the marker key is gone (Redis restarted empty, or the first pass ever), make the
    running leases in their second half due now: their tasks may have gone with Redis's data.
    A lease being sent is never in its second half (leases.py), so it is left alone and is
    never sent twice at once; a younger lease whose task was lost runs out by itself within
    half a lease. A task that did survive is then stale (the claim gives a new token) and
    sends nothing. Returns the number of leases released."""
    if not get_redis().set(BROKER_MARK, "1", nx=True):
        return 0  # the marker is there: Redis kept its queue
    half = timedelta(seconds=lease_seconds() / 2)
    result = db.session.execute(
        update(Delivery)
        .where(
            Delivery.status == MessageStatus.SENDING,
            Delivery.lease_token.is_not(None),
            Delivery.next_attempt_at > now,
            Delivery.next_attempt_at < now + half,
        )
        .values(next_attempt_at=now, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    released = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if released:
        logger.warning("dispatch.broker_reset", extra={"released": released})
    return released


def dispatch_due(now: datetime | None = None) -> int:
    """Claim due deliveries (bounded by the in-flight cap) and publish them; returns the count."""
    config = current_app.config
    batch = int(config.get("DISPATCH_BATCH", DEFAULT_BATCH))
    max_in_flight = int(config.get("DISPATCH_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT))
    moment = now or utcnow()
    release_if_broker_forgot(moment)
    # leases still running, and tasks still queued (workers away: a lease that ran out in the
    # queue is claimed again, and its stale task must not pile up behind it)
    room = max_in_flight - max(count_in_flight(moment, max_in_flight), queued_tasks())
    total = 0
    while room > 0:
        claimed = claim_due(min(batch, room), moment)
        enqueue_many(DELIVER_TASK, claimed)
        total += len(claimed)
        room -= len(claimed)
        if len(claimed) < batch:
            break
    if total:
        logger.info("dispatch.claimed", extra={"deliveries": total})
    return total
