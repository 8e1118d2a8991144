"""The delivery outbox: delivery rows created due in the message's transaction; a wake-up
published after the commit.

A new delivery is inserted due now (`next_attempt_at = created`, no lease) in the same
transaction as its message. After the commit, `wake()` makes sure a pump (pump.py) is awake:
if one is already running anywhere, it finds the row on its next claim and nothing is
published at all; otherwise one `herald.pump` task is. If that publish is lost (Redis down,
process killed) the dispatcher's next pass sees the due row and wakes a pump: nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from flask import current_app
from sqlalchemy import select

from api.extensions import db, get_redis
from api.ids import new_id
from api.models import Delivery, Endpoint, Message, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services.queue import QUEUE, task_message

logger = logging.getLogger(__name__)

PUMP_TASK = "herald.pump"
# Set while a pump task is queued or a pump runs (pump.py refreshes it): a producer that finds
# it set publishes nothing. Its expiry bounds what a lost wake-up costs.
AWAKE_KEY = "herald:awake"
# A process that found the flag set (or set it) less than this long ago does not ask again:
# at ingest rates one round trip per window, not per message. A pump that clears the flag
# claims once more WAKE_WINDOW after the clear (pump.py), so a row committed by a producer
# that trusted an older look is still found.
WAKE_WINDOW = 0.05

# One round trip: publish the wake-up only when nothing is awake.
_WAKE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class _FailureLog:
    """`queue.publish_failed` at most once per INTERVAL s with the count since the last line:
    with Redis down every message fails to publish, and one line each would flood the log."""

    INTERVAL = 5.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = -self.INTERVAL
        self.count = 0

    def note(self) -> None:
        with self.lock:
            self.count += 1
            now = time.monotonic()
            if now - self.last < self.INTERVAL:
                return
            count, self.count, self.last = self.count, 0, now
        logger.warning(
            "queue.publish_failed", extra={"task": PUMP_TASK, "failures": count}, exc_info=True
        )


_FAILURES = _FailureLog()


class _AwakeSeen:
    """When this process last knew the flag set: the monotonic time its check was *sent*
    (the flag was set at some instant after that, so a clear came later still)."""

    def __init__(self) -> None:
        self.at = -WAKE_WINDOW

    def recent(self) -> bool:
        # never "recent" for a look from the future (a test's frozen clock, say)
        return 0 <= time.monotonic() - self.at < WAKE_WINDOW


_SEEN = _AwakeSeen()


def awake_seconds() -> int:
    """How long the awake flag lasts unrefreshed (2 dispatcher intervals, at least 2 s)."""
    return max(2, int(2 * float(current_app.config["DISPATCH_INTERVAL"]) + 0.999))


def due_row(
    msg_id: str,
    app_id: str,
    endpoint_id: str,
    trigger: TriggerType = TriggerType.SCHEDULED,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The column values of a new delivery, due now."""
    created = now or utcnow()
    return {
        "id": new_id("msgep", created.timestamp()),
        "msg_id": msg_id,
        "endpoint_id": endpoint_id,
        "app_id": app_id,
        "status": MessageStatus.SENDING,
        "trigger_type": trigger,
        "attempt_count": 0,
        "next_attempt_at": created,
        "lease_token": None,
        "created_at": created,
        "updated_at": created,
    }


def add_delivery(
    message: Message, endpoint: Endpoint, trigger: TriggerType = TriggerType.SCHEDULED
) -> Delivery:
    """Add (not commit) a due delivery row for message → endpoint."""
    delivery = Delivery(**due_row(message.id, message.app_id, endpoint.id, trigger))
    db.session.add(delivery)
    return delivery


def due_rows(message_row: dict[str, Any], endpoint_ids: Iterable[str]) -> list[dict[str, Any]]:
    """SCHEDULED delivery rows of a new message (for one Core INSERT), due now or at its
    `deliver_at` (deliverAt) when that is later."""
    created, deliver_at = message_row["created_at"], message_row.get("deliver_at")
    rows = [
        due_row(message_row["id"], message_row["app_id"], endpoint_id, now=created)
        for endpoint_id in endpoint_ids
    ]
    if deliver_at is not None and deliver_at > created:
        for row in rows:
            row["next_attempt_at"] = deliver_at
    return rows


def wake(force: bool = False, client: redis.Redis | None = None) -> bool:
    """After commit: make sure a pump will look at the table; True when a task was published.

    Nothing is asked when this process saw the flag set less than WAKE_WINDOW ago. Never
    raises: with Redis away the dispatcher's next pass wakes a pump instead. `force`
    publishes even when one is awake (the dispatcher, so a backlog reaches other workers);
    `client` another Redis than the app's (tests of private brokers).
    """
    if not force and client is None and _SEEN.recent():
        return False
    try:
        sent = time.monotonic()
        client = client or get_redis()
        message = task_message(PUMP_TASK, [])
        if force:
            client.lpush(QUEUE, message)
            return True
        script = client.register_script(_WAKE)
        published = bool(script(keys=[AWAKE_KEY, QUEUE], args=[awake_seconds(), message]))
        _SEEN.at = sent
        return published
    except Exception:
        _FAILURES.note()
        return False


def delete_deliveries(*where: Any) -> None:
    """Delete the matching deliveries (their attempts cascade) before deleting what owns them.

    Lock order: recording an attempt locks its delivery row, then key-share locks its message
    and endpoint (the attempt row's foreign keys). Deleting an application or an endpoint
    outright locks them first and reaches the deliveries through the cascade: the opposite
    order, a deadlock with a busy worker. Deleting the deliveries first takes the worker's
    order (it waits for an attempt being recorded, and a later record finds its row gone).
    The rows are locked in id order first, as a batch record and the lease renewal lock
    theirs: two writers of several rows never wait on each other in a circle.
    """
    rows = select(Delivery.id).where(*where).order_by(Delivery.id).with_for_update()
    db.session.execute(
        Delivery.__table__.delete().where(Delivery.id.in_(rows.scalar_subquery())),
        execution_options={"synchronize_session": False},
    )
