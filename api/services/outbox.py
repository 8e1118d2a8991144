"""The delivery outbox: delivery rows created already leased, published after commit.

A new delivery is inserted with a lease (`next_attempt_at = now + LEASE_SECONDS`, a fresh
`lease_token`) in the same transaction as its message, and `herald.deliver(id, token)` is
published after the commit (the fast path). If that publish is lost — Redis down, process
killed — the lease expires and the dispatcher claims the row again: nothing is lost.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from api.extensions import db
from api.ids import new_id
from api.models import Delivery, Endpoint, Message, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services.queue import enqueue_many

DELIVER_TASK = "herald.deliver"


def new_lease_token() -> str:
    """A random token that fences one claim of a delivery."""
    return secrets.token_hex(16)


def lease_deadline() -> datetime:
    """When a lease taken now expires."""
    return utcnow() + timedelta(seconds=current_app.config["LEASE_SECONDS"])


def add_delivery(
    message: Message, endpoint: Endpoint, trigger: TriggerType = TriggerType.SCHEDULED
) -> Delivery:
    """Add (not commit) a leased delivery row for message → endpoint."""
    delivery = Delivery(
        msg_id=message.id,
        endpoint_id=endpoint.id,
        app_id=message.app_id,
        status=MessageStatus.SENDING,
        trigger_type=trigger,
        attempt_count=0,
        next_attempt_at=lease_deadline(),
        lease_token=new_lease_token(),
    )
    db.session.add(delivery)
    return delivery


def leased_rows(message_row: dict[str, Any], endpoint_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Column values of a new leased SCHEDULED delivery per endpoint (for a Core INSERT)."""
    now, until = message_row["created_at"], lease_deadline()
    return [
        {
            "id": new_id("msgep"),
            "msg_id": message_row["id"],
            "endpoint_id": endpoint_id,
            "app_id": message_row["app_id"],
            "status": MessageStatus.SENDING,
            "trigger_type": TriggerType.SCHEDULED,
            "attempt_count": 0,
            "next_attempt_at": until,
            "lease_token": new_lease_token(),
            "created_at": now,
            "updated_at": now,
        }
        for endpoint_id in endpoint_ids
    ]


def publish(deliveries: Iterable[Delivery | dict[str, Any]]) -> int:
    """After commit: publish `herald.deliver(id, lease_token)` for each delivery (object or
    row) in one round trip; returns how many went."""
    return enqueue_many(
        DELIVER_TASK,
        [
            (d["id"], d["lease_token"]) if isinstance(d, dict) else (d.id, d.lease_token)
            for d in deliveries
        ],
    )
