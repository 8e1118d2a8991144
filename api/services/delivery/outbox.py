"""The delivery outbox: delivery rows created already leased, published after commit.

A new delivery is inserted with a lease (`next_attempt_at = now + LEASE_SECONDS`, a fresh
`lease_token`) in the same transaction as its message, and `herald.deliver(id, token)` is
published after the commit (the fast path). If that publish is lost — Redis down, process
killed — the lease expires and the dispatcher claims the row again: nothing is lost.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from api.extensions import db
from api.ids import new_id
from api.models import Delivery, Endpoint, Message, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services.delivery.leases import lease_deadline
from api.services.queue import enqueue_many

DELIVER_TASK = "herald.deliver"


def new_lease_token() -> str:
    """A random token that fences one claim of a delivery."""
    return secrets.token_hex(16)


def leased_row(
    msg_id: str,
    app_id: str,
    endpoint_id: str,
    trigger: TriggerType = TriggerType.SCHEDULED,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The column values of a new delivery, created already leased."""
    created = now or utcnow()
    return {
        "id": new_id("msgep", created.timestamp()),
        "msg_id": msg_id,
        "endpoint_id": endpoint_id,
        "app_id": app_id,
        "status": MessageStatus.SENDING,
        "trigger_type": trigger,
        "attempt_count": 0,
        "next_attempt_at": lease_deadline(),  # api/services/delivery/leases.py
        "lease_token": new_lease_token(),
        "created_at": created,
        "updated_at": created,
    }


def add_delivery(
    message: Message, endpoint: Endpoint, trigger: TriggerType = TriggerType.SCHEDULED
) -> Delivery:
    """Add (not commit) a leased delivery row for message → endpoint."""
    delivery = Delivery(**leased_row(message.id, message.app_id, endpoint.id, trigger))
    db.session.add(delivery)
    return delivery


def leased_rows(message_row: dict[str, Any], endpoint_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Leased SCHEDULED delivery rows of a new message (for one Core INSERT)."""
    return [
        leased_row(
            message_row["id"], message_row["app_id"], endpoint_id, now=message_row["created_at"]
        )
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


def delete_deliveries(*where: Any) -> None:
    """Delete the matching deliveries (their attempts cascade) before deleting what owns them.

    Lock order: recording an attempt locks its delivery row, then key-share locks its message
    and endpoint (the attempt row's foreign keys). Deleting an application or an endpoint
    outright locks them first and reaches the deliveries through the cascade: the opposite
    order, a deadlock with a busy worker. Deleting the deliveries first takes the worker's
    order (it waits for an attempt being recorded, and a later record finds its row gone).
    """
    db.session.execute(Delivery.__table__.delete().where(*where))
