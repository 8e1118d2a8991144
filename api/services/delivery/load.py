"""A delivery's job: the snapshot one attempt needs, read under its lease; parking it.

Every write is fenced on the lease token (`fenced_update`), so a stale or duplicate
execution changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update

from api.extensions import db
from api.models import Delivery, Endpoint, Message, MessageStatus
from api.models.common import utcnow
from api.services import driver
from api.services.delivery.leases import PICKUP_SHARE, lease_deadline, lease_seconds
from api.services.delivery.signing import live_keys

THROTTLE_INLINE_WAIT = 1.0  # a throttle wait up to this long is slept in the task


@dataclass(frozen=True)
class Job:
    """What one attempt needs, copied out of the database before the HTTP call."""

    delivery_id: str
    lease_token: str
    msg_id: str
    app_id: str
    endpoint_id: str
    url: str
    trigger_type: int
    attempt_count: int
    body: bytes
    keys: list[str]
    headers: dict[str, str]
    throttle_rate: int | None
    first_failure_at: datetime | None = None


DELIVERY, ENDPOINT, MESSAGE = Delivery.__table__, Endpoint.__table__, Message.__table__


def fenced_update(delivery_id: str, token: str, **values: object) -> bool:
    """Update the delivery only while this lease holds it; False when the lease is stale."""
    result = db.session.execute(
        update(DELIVERY)
        .where(
            DELIVERY.c.id == delivery_id,
            DELIVERY.c.lease_token == token,
            DELIVERY.c.status == MessageStatus.SENDING,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_LOAD = (
    select(
        DELIVERY.c.msg_id,
        DELIVERY.c.trigger_type,
        DELIVERY.c.attempt_count,
        DELIVERY.c.next_attempt_at,
        ENDPOINT.c.id.label("endpoint_id"),
        ENDPOINT.c.app_id,
        ENDPOINT.c.url,
        ENDPOINT.c.secret,
        ENDPOINT.c.old_keys,
        ENDPOINT.c.headers,
        ENDPOINT.c.throttle_rate,
        ENDPOINT.c.disabled,
        ENDPOINT.c.first_failure_at,
        MESSAGE.c.payload,
    )
    .select_from(
        DELIVERY.join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id).join(
            MESSAGE, MESSAGE.c.id == DELIVERY.c.msg_id
        )
    )
    .where(
        DELIVERY.c.id == bindparam("delivery_id"),
        DELIVERY.c.lease_token == bindparam("token"),
        DELIVERY.c.status == bindparam("sending"),
    )
)


_LOAD_PG = driver.compiled(_LOAD)  # run with psycopg directly (api/services/driver.py)


def load_job(delivery_id: str, token: str) -> Job | str:
    """Snapshot the job (one read), or a reason string (stale / disabled / payload_expired).

    A lease with less left than one attempt needs is renewed first (a task that waited long
    in the queue), so the dispatcher cannot hand the row to another worker mid-attempt.
    """
    now = utcnow()
    params = {"delivery_id": delivery_id, "token": token, "sending": int(MessageStatus.SENDING)}
    row: Any
    if db.engine.dialect.name == "postgresql":  # the hot read of every attempt
        row = next(iter(driver.execute(_LOAD_PG, params)), None)
    else:
        row = db.session.execute(_LOAD, params).first()
    if row is None:
        db.session.rollback()
        return "stale"
    if row.disabled or row.payload is None:
        fenced_update(
            delivery_id,
            token,
            status=MessageStatus.CANCELED,
            next_attempt_at=None,
            lease_token=None,
            updated_at=now,
        )
        db.session.commit()
        return "disabled" if row.disabled else "payload_expired"
    # less than PICKUP_SHARE of a lease left (a task that waited in the queue): renew it
    # before the attempt, so the renewal thread takes over in time (leases.py)
    needed = timedelta(seconds=lease_seconds() * PICKUP_SHARE)
    if row.next_attempt_at is None or row.next_attempt_at - now < needed:
        if not fenced_update(delivery_id, token, next_attempt_at=lease_deadline(now)):
            db.session.rollback()
            return "stale"
        db.session.commit()
    else:
        db.session.rollback()  # end the read; no transaction (or connection) held during POST
    return Job(
        delivery_id=delivery_id,
        lease_token=token,
        msg_id=row.msg_id,
        app_id=row.app_id,
        endpoint_id=row.endpoint_id,
        url=row.url,
        trigger_type=row.trigger_type,
        attempt_count=row.attempt_count,
        body=row.payload.encode(),
        keys=live_keys(row.secret, row.old_keys, now),
        headers=dict(row.headers or {}),
        throttle_rate=row.throttle_rate,
        first_failure_at=row.first_failure_at,
    )


def park(job: Job, seconds: float) -> bool:
    """Put the delivery back for later without counting an attempt (throttle / busy)."""
    ok = fenced_update(
        job.delivery_id,
        job.lease_token,
        lease_token=None,
        next_attempt_at=utcnow() + timedelta(seconds=seconds),
        updated_at=utcnow(),
    )
    db.session.commit()
    return ok
