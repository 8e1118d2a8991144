"""A delivery's job: the snapshot one attempt needs, taken by the claim that leases the row.

Every write to a leased row is fenced on its lease token (`fenced_update`), so a stale or
duplicate execution changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update

from api.extensions import db
from api.models import Delivery, Endpoint, EventType, Message, MessageStatus
from api.services.delivery.signing import live_keys

DELIVERY, ENDPOINT, MESSAGE = Delivery.__table__, Endpoint.__table__, Message.__table__
EVENT_TYPE = EventType.__table__


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
    content_type: str = "application/json"  # a raw payload's own (transformationsParams)
    retry_schedule: tuple[float, ...] | None = None  # its event type's; None: the default


def job_from_row(row: Any, now: datetime) -> Job:
    """A Job from a claimed row (delivery, endpoint, message and event type columns; claim.py)."""
    return Job(
        delivery_id=row.id,
        lease_token=row.lease_token,
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
        content_type=row.content_type or "application/json",
        retry_schedule=None if row.retry_schedule is None else tuple(row.retry_schedule),
    )


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
