"""Claiming: due deliveries leased in batches, fairly per endpoint, with their jobs joined;
and the dispatcher, which wakes a pump when due rows wait.

PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so pumps in any number of processes get
disjoint rows; SQLite (quickstart) runs the same selection for its one worker. A claimed
row gets a new `lease_token` and `next_attempt_at = now + LEASE_SECONDS` (renewed while it is
being sent, leases.py): if its worker dies, the row is due again when the lease runs out.
Claims are fair: every endpoint with due rows gets at most HERALD_ENDPOINT_CONCURRENCY
leases in flight across all workers (the per-endpoint concurrency cap, enforced here), so one
dead endpoint's backlog stays in the table and the others' rows are claimed beside it.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select, tuple_, update

from api.extensions import db
from api.models import Delivery, MessageStatus
from api.models.common import utcnow
from api.services import driver
from api.services.delivery import outbox
from api.services.delivery.job import DELIVERY, ENDPOINT, EVENT_TYPE, MESSAGE, Job, job_from_row
from api.services.delivery.leases import lease_deadline

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT_CONCURRENCY = 4

# The endpoints with pending rows are walked with a skip scan of ix_delivery_pending (one
# index probe per endpoint, however deep its backlog; ordered as that index is, so the
# planner cannot pick the full endpoint index and filter a history of delivered rows); each
# due one offers its oldest due rows up to the cap less its running leases; the oldest
# `limit` of those are locked
# (skipping rows another claim holds), leased, and returned with what the attempt needs.
_CLAIM_PG = """
WITH RECURSIVE pending(endpoint_id) AS (
  (SELECT endpoint_id FROM delivery WHERE next_attempt_at IS NOT NULL
    ORDER BY endpoint_id, next_attempt_at LIMIT 1)
  UNION ALL
  SELECT (SELECT d.endpoint_id FROM delivery d
           WHERE d.next_attempt_at IS NOT NULL AND d.endpoint_id > p.endpoint_id
           ORDER BY d.endpoint_id, d.next_attempt_at LIMIT 1)
    FROM pending p WHERE p.endpoint_id IS NOT NULL),
candidates AS (
  SELECT c.id, c.next_attempt_at FROM pending p
  CROSS JOIN LATERAL (
    SELECT d.id, d.next_attempt_at FROM delivery d
     WHERE d.endpoint_id = p.endpoint_id AND d.next_attempt_at <= %(now)s
     ORDER BY d.next_attempt_at
     LIMIT GREATEST(%(per_endpoint)s - (
       SELECT count(*) FROM delivery l
        WHERE l.endpoint_id = p.endpoint_id AND l.lease_token IS NOT NULL
          AND l.next_attempt_at > %(now)s), 0)) c
  WHERE p.endpoint_id IS NOT NULL
  ORDER BY c.next_attempt_at LIMIT %(limit)s),
locked AS (
  SELECT d.id FROM delivery d
   WHERE d.id IN (SELECT id FROM candidates) AND d.status = 3
     AND d.next_attempt_at <= %(now)s
   FOR UPDATE SKIP LOCKED),
upd AS (
  UPDATE delivery d SET lease_token = replace(CAST(gen_random_uuid() AS text), '-', ''),
         next_attempt_at = %(until)s, updated_at = %(now)s
    FROM locked WHERE d.id = locked.id
  RETURNING d.id, d.lease_token, d.msg_id, d.endpoint_id, d.trigger_type, d.attempt_count,
            d.next_attempt_at)
SELECT upd.id, upd.lease_token, upd.msg_id, upd.endpoint_id, upd.trigger_type,
       upd.attempt_count, e.app_id, e.url, e.secret, e.old_keys, e.headers, e.throttle_rate,
       e.disabled, e.first_failure_at, m.payload, m.content_type, et.retry_schedule
  FROM upd JOIN endpoint e ON e.id = upd.endpoint_id JOIN message m ON m.id = upd.msg_id
  LEFT JOIN event_type et ON et.org_id = m.org_id AND et.name = m.event_type
 ORDER BY upd.next_attempt_at
"""

_JOB_COLUMNS = (
    DELIVERY.c.id,
    DELIVERY.c.lease_token,
    DELIVERY.c.msg_id,
    DELIVERY.c.endpoint_id,
    DELIVERY.c.trigger_type,
    DELIVERY.c.attempt_count,
    ENDPOINT.c.app_id,
    ENDPOINT.c.url,
    ENDPOINT.c.secret,
    ENDPOINT.c.old_keys,
    ENDPOINT.c.headers,
    ENDPOINT.c.throttle_rate,
    ENDPOINT.c.disabled,
    ENDPOINT.c.first_failure_at,
    MESSAGE.c.payload,
    MESSAGE.c.content_type,
    EVENT_TYPE.c.retry_schedule,
)


def per_endpoint_limit() -> int:
    """Concurrent deliveries allowed per endpoint (HERALD_ENDPOINT_CONCURRENCY, default 4)."""
    return int(current_app.config.get("ENDPOINT_CONCURRENCY", DEFAULT_ENDPOINT_CONCURRENCY))


def _claim_postgresql(now: datetime, until: datetime, limit: int, cap: int) -> list[Any]:
    params = {"now": now, "until": until, "limit": limit, "per_endpoint": cap}
    return driver.execute(_CLAIM_PG, params)


def _claim_generic(now: datetime, until: datetime, limit: int, cap: int) -> list[Any]:
    """The same fair selection in Python (SQLite quickstart: one worker)."""
    leased = dict(
        db.session.execute(
            select(Delivery.endpoint_id, func.count())
            .where(Delivery.lease_token.is_not(None), Delivery.next_attempt_at > now)
            .group_by(Delivery.endpoint_id)
        ).all()
    )
    rows = db.session.execute(
        select(Delivery.id, Delivery.endpoint_id, Delivery.next_attempt_at)
        .where(Delivery.status == MessageStatus.SENDING, Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(max(limit * 20, 1000))
    ).all()
    taken: list[tuple[str, str]] = []
    for delivery_id, endpoint_id, old in rows:
        if len(taken) >= limit or leased.get(endpoint_id, 0) >= cap:
            continue
        token = secrets.token_hex(16)  # as PostgreSQL's: 32 hex characters
        result = db.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.next_attempt_at == old)
            .values(lease_token=token, next_attempt_at=until, updated_at=now),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount:  # type: ignore[attr-defined]
            taken.append((delivery_id, token))
            leased[endpoint_id] = leased.get(endpoint_id, 0) + 1
    if not taken:
        return []
    found = db.session.execute(
        select(*_JOB_COLUMNS)
        .select_from(
            DELIVERY.join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id)
            .join(MESSAGE, MESSAGE.c.id == DELIVERY.c.msg_id)
            .outerjoin(
                EVENT_TYPE,
                (EVENT_TYPE.c.org_id == MESSAGE.c.org_id)
                & (EVENT_TYPE.c.name == MESSAGE.c.event_type),
            )
        )
        .where(tuple_(DELIVERY.c.id, DELIVERY.c.lease_token).in_(taken))
    ).all()
    order = {delivery_id: i for i, (delivery_id, _) in enumerate(taken)}
    return sorted(found, key=lambda row: order[row.id])


def claim_jobs(limit: int, now: datetime | None = None) -> list[Job]:
    """Lease up to `limit` due deliveries and commit; returns their jobs, oldest first.

    Rows whose endpoint was disabled or whose payload was purged are finished here
    (CANCELED) instead of being returned.
    """
    if limit <= 0:
        return []
    moment = now or utcnow()
    until = lease_deadline(moment)
    if db.engine.dialect.name == "postgresql":
        rows = _claim_postgresql(moment, until, limit, per_endpoint_limit())
    else:
        rows = _claim_generic(moment, until, limit, per_endpoint_limit())
    dead = [(row.id, row.lease_token) for row in rows if row.disabled or row.payload is None]
    if dead:
        db.session.execute(
            update(Delivery)
            .where(tuple_(Delivery.id, Delivery.lease_token).in_(dead))
            .values(
                status=MessageStatus.CANCELED,
                next_attempt_at=None,
                lease_token=None,
                updated_at=moment,
            ),
            execution_options={"synchronize_session": False},
        )
        logger.info("delivery.canceled", extra={"deliveries": len(dead)})
    driver.commit()
    return [job_from_row(row, moment) for row in rows if not (row.disabled or row.payload is None)]


_OLDEST_DUE = (
    select(Delivery.next_attempt_at)
    .where(Delivery.next_attempt_at <= bindparam("now"))
    .order_by(Delivery.next_attempt_at)
    .limit(1)
)
_OLDEST_DUE_PG = """SELECT next_attempt_at FROM delivery WHERE next_attempt_at <= %(now)s
 ORDER BY next_attempt_at LIMIT 1"""


def oldest_due(now: datetime) -> datetime | None:
    """The due time of the oldest due row (None when nothing is due): one index probe, and
    no transaction left open."""
    if db.engine.dialect.name == "postgresql":
        rows = driver.execute(_OLDEST_DUE_PG, {"now": now})
        return rows[0][0] if rows else None
    found = db.session.execute(_OLDEST_DUE, {"now": now}).scalar()
    db.session.rollback()
    return found


def dispatch_due(now: datetime | None = None) -> int:
    """The dispatcher's pass (beat, every HERALD_DISPATCH_INTERVAL s): wake a pump when rows
    are due — retries whose time came, rows whose lease ran out, wake-ups that were lost.

    A row due for longer than one interval means no pump is getting to it (none awake, or
    all at capacity): the wake-up is then published even if one is awake, so another worker
    process joins in. Returns the number of wake-ups published (0 or 1).
    """
    moment = now or utcnow()
    oldest = oldest_due(moment)
    if oldest is None:
        return 0
    interval = timedelta(seconds=float(current_app.config["DISPATCH_INTERVAL"]))
    return int(outbox.wake(force=moment - oldest > interval))
