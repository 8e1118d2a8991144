"""The attempt log: list, count, get and expunge message attempts, the app's attempt stats,
and resend a message to an endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from api.errors import BadRequest, NotFound
from api.extensions import db
from api.ids import boundary_id
from api.models import Delivery, Endpoint, Message, MessageAttempt, MessageStatus, TriggerType
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services.delivery import outbox
from api.services.destinations import stats_window
from api.services.filters import id_bounds, message_filters
from api.services.lookup import (
    get_app_endpoint,
    get_app_message,
    get_application,
    get_endpoint,
    get_message,
)

logger = logging.getLogger(__name__)

STATUS_CODE_CLASS_WIDTH = 100
COUNT_CEILING = 10_000  # a count stops here and says `approximated`, as Svix's does
EXPUNGED = "EXPUNGED"  # an expunged attempt's response, as Svix writes it


def _filter_attempts(
    query: Select[Any],
    *,
    iterator: str | None = None,
    status: int | None = None,
    status_code_class: int | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
    channel: str | None = None,
    tag: str | None = None,
    event_types: list[str] | None = None,
) -> Select[Any]:
    """The attempts of `query` matching the filters (within the list window of the anchor)."""
    query = query.where(*id_bounds(MessageAttempt.id, "atmpt", before, after, iterator))
    if status is not None:
        query = query.where(MessageAttempt.status == status)
    if status_code_class is not None:
        query = query.where(
            MessageAttempt.response_status_code.between(
                status_code_class, status_code_class + STATUS_CODE_CLASS_WIDTH - 1
            )
        )
    if channel or tag or event_types:
        query = query.join(Message, Message.id == MessageAttempt.msg_id)
        query = message_filters(query, channel, tag, event_types)
    return query


def _list_attempts(query: Select[Any], *, limit: int, iterator: str | None, **filters: Any) -> Page:
    """Newest-first page of attempts matching the filters."""
    query = _filter_attempts(query, iterator=iterator, **filters)
    return paginate(query, MessageAttempt.id, limit, iterator, descending=True)


def list_attempts_by_msg(
    org_id: str, app_id: str, msg_id: str, endpoint_id: str | None = None, **filters: Any
) -> Page:
    """Attempts of one message (optionally to one endpoint), newest first."""
    app = get_application(org_id, app_id)
    message = get_message(app, msg_id)
    query = select(MessageAttempt).where(MessageAttempt.msg_id == message.id)
    if endpoint_id is not None:
        query = query.where(MessageAttempt.endpoint_id == get_endpoint(app, endpoint_id).id)
    return _list_attempts(query, **filters)


def list_attempts_by_endpoint(org_id: str, app_id: str, endpoint_id: str, **filters: Any) -> Page:
    """Attempts to one endpoint, newest first."""
    endpoint = get_app_endpoint(org_id, app_id, endpoint_id)
    query = select(MessageAttempt).where(MessageAttempt.endpoint_id == endpoint.id)
    return _list_attempts(query, **filters)


def count_attempts_by_endpoint(
    org_id: str, app_id: str, endpoint_id: str, **filters: Any
) -> tuple[int, bool]:
    """How many attempts to the endpoint match the list's filters: (count, approximated), the
    count stopping at COUNT_CEILING."""
    endpoint = get_app_endpoint(org_id, app_id, endpoint_id)
    query = _filter_attempts(
        select(MessageAttempt.id).where(MessageAttempt.endpoint_id == endpoint.id), **filters
    )
    counted = db.session.scalar(
        select(func.count()).select_from(query.limit(COUNT_CEILING + 1).subquery())
    )
    count = int(counted or 0)
    return min(count, COUNT_CEILING), count > COUNT_CEILING


def app_attempt_stats(
    org_id: str,
    app_id: str,
    since: datetime,
    until: datetime,
    event_types: list[str] | None = None,
) -> dict[str, Any]:
    """The app's attempts in [since, until) per event type: succeeded, failed, and canceled
    (deliveries canceled in the window: Herald logs no attempt for those), or 400 for a window
    that is not in the past or longer than 28 days."""
    app = get_application(org_id, app_id)
    since, until = stats_window(since, until)
    endpoints = select(Endpoint.id).where(Endpoint.app_id == app.id)
    attempts = (
        select(Message.event_type, MessageAttempt.status, func.count())
        .join(Message, Message.id == MessageAttempt.msg_id)
        .where(
            MessageAttempt.endpoint_id.in_(endpoints),  # the (endpoint_id, id) index
            MessageAttempt.id >= boundary_id("atmpt", since),
            MessageAttempt.id < boundary_id("atmpt", until),
            MessageAttempt.status.in_([MessageStatus.SUCCESS, MessageStatus.FAIL]),
        )
        .group_by(Message.event_type, MessageAttempt.status)
    )
    canceled = (
        select(Message.event_type, Delivery.status, func.count())
        .join(Message, Message.id == Delivery.msg_id)
        .where(
            Delivery.app_id == app.id,
            Delivery.status == MessageStatus.CANCELED,
            Delivery.updated_at >= since,
            Delivery.updated_at < until,
        )
        .group_by(Message.event_type, Delivery.status)
    )
    if event_types:
        attempts = attempts.where(Message.event_type.in_(event_types))
        canceled = canceled.where(Message.event_type.in_(event_types))
    keys = {
        MessageStatus.SUCCESS: "success",
        MessageStatus.FAIL: "failure",
        MessageStatus.CANCELED: "canceled",
    }
    by_event_type: dict[str, dict[str, int]] = {}
    for query in (attempts, canceled):
        for event_type, status, count in db.session.execute(query):
            counts = by_event_type.setdefault(event_type, dict.fromkeys(keys.values(), 0))
            counts[keys[MessageStatus(status)]] += int(count)
    totals = {f"total_{key}": sum(c[key] for c in by_event_type.values()) for key in keys.values()}
    return {"by_event_type": by_event_type, **totals, "since": since, "until": until}


def messages_by_id(msg_ids: Iterable[str]) -> dict[str, Message]:
    """The messages with those ids, keyed by id (for `with_msg=true`)."""
    ids = set(msg_ids)
    if not ids:
        return {}
    return {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}


def get_attempt(org_id: str, app_id: str, msg_id: str, attempt_id: str) -> MessageAttempt:
    """One attempt of the message, or 404."""
    message = get_app_message(org_id, app_id, msg_id)
    if "\x00" in attempt_id:
        raise NotFound()
    attempt = db.session.scalar(
        select(MessageAttempt).where(
            MessageAttempt.id == attempt_id, MessageAttempt.msg_id == message.id
        )
    )
    if attempt is None:
        raise NotFound()
    return attempt


def expunge_attempt_content(org_id: str, app_id: str, msg_id: str, attempt_id: str) -> None:
    """Replace the attempt's response body with "EXPUNGED" (it held something sensitive)."""
    attempt = get_attempt(org_id, app_id, msg_id, attempt_id)
    attempt.response = EXPUNGED
    db.session.commit()
    logger.info("attempt.expunged", extra={"attempt_id": attempt.id, "msg_id": attempt.msg_id})


def payload_available(message: Message) -> bool:
    """False once the payload was purged or its retention has passed (nothing left to send)."""
    return message.payload is not None and message.expiration > utcnow()


def resend_message(org_id: str, app_id: str, msg_id: str, endpoint_id: str) -> Delivery | None:
    """Queue a manual delivery to the endpoint, ignoring its filters (None when disabled)."""
    app = get_application(org_id, app_id)
    message = get_message(app, msg_id)
    endpoint = get_endpoint(app, endpoint_id)
    if not payload_available(message):
        raise BadRequest("missing_payload", "The message's payload has expired or was deleted.")
    if endpoint.disabled:  # Svix silently skips disabled endpoints, even for manual sends
        logger.info(
            "resend.skipped_disabled", extra={"msg_id": message.id, "endpoint_id": endpoint.id}
        )
        return None
    delivery = outbox.add_delivery(message, endpoint, TriggerType.MANUAL)
    db.session.commit()
    outbox.wake()
    logger.info(
        "resend.queued",
        extra={"msg_id": message.id, "endpoint_id": endpoint.id, "delivery_id": delivery.id},
    )
    return delivery
