"""The attempt log: list and get message attempts, and resend a message to an endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute

from api.errors import BadRequest, NotFound
from api.extensions import db
from api.ids import EPOCH, boundary_id, id_timestamp
from api.models import Delivery, Message, MessageAttempt, TriggerType
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services import outbox
from api.services.lookup import get_application, get_endpoint, get_message

logger = logging.getLogger(__name__)

LIST_WINDOW = timedelta(days=90)  # Svix lists at most 90 days around the anchor time
STATUS_CODE_CLASS_WIDTH = 100
# ids encode 2014-05-13 .. ~2150 (5-byte KSUID time): clamping changes no result, avoids overflow
ID_TIME_MIN = datetime.fromtimestamp(EPOCH, UTC) + LIST_WINDOW
ID_TIME_MAX = datetime(2150, 1, 1, tzinfo=UTC)


def clamp_moment(moment: datetime) -> datetime:
    """The moment, moved into the range that ids can encode (with room for the list window)."""
    return min(max(moment, ID_TIME_MIN), ID_TIME_MAX)


def id_bounds(
    column: InstrumentedAttribute[Any],
    prefix: str,
    before: datetime | None,
    after: datetime | None,
    iterator: str | None,
) -> list[Any]:
    """WHERE clauses keeping ids in (after, before) and within 90 days of the anchor time."""
    # anchor: the iterator's time, else `before`, else `after`, else now (as Svix's lists do)
    before = clamp_moment(before) if before else None
    after = clamp_moment(after) if after else None
    cursor_ts = id_timestamp(iterator.lstrip("-")) if iterator else None
    if cursor_ts is not None:
        anchor = clamp_moment(datetime.fromtimestamp(cursor_ts, tz=UTC))
    else:
        anchor = before or after or utcnow()
    clauses = [column > boundary_id(prefix, after or anchor - LIST_WINDOW, upper=True)]
    if before is not None:
        clauses.append(column < boundary_id(prefix, before))
    elif after is not None:
        clauses.append(column < boundary_id(prefix, anchor + LIST_WINDOW))
    return clauses


def message_filters(
    query: Select[Any],
    channel: str | None = None,
    tag: str | None = None,
    event_types: list[str] | None = None,
) -> Select[Any]:
    """Filter on the message's channels, tags and event type (the query must join Message)."""
    if channel:
        query = query.where(type_coerce(Message.channels, JSONB).contains([channel]))
    if tag:
        query = query.where(type_coerce(Message.tags, JSONB).contains([tag]))
    if event_types:
        query = query.where(Message.event_type.in_(event_types))
    return query


def _list_attempts(
    query: Select[Any],
    *,
    limit: int,
    iterator: str | None,
    status: int | None = None,
    status_code_class: int | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
    channel: str | None = None,
    tag: str | None = None,
    event_types: list[str] | None = None,
) -> Page:
    """Newest-first page of attempts matching the filters."""
    query = query.where(*id_bounds(MessageAttempt.id, "atmpt", before, after, iterator))
    if status is not None:
        query = query.where(MessageAttempt.status == status)
    if status_code_class is not None:
        query = query.where(MessageAttempt.response_status_code.between(
            status_code_class, status_code_class + STATUS_CODE_CLASS_WIDTH - 1))
    if channel or tag or event_types:
        query = query.join(Message, Message.id == MessageAttempt.msg_id)
        query = message_filters(query, channel, tag, event_types)
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
    endpoint = get_endpoint(get_application(org_id, app_id), endpoint_id)
    query = select(MessageAttempt).where(MessageAttempt.endpoint_id == endpoint.id)
    return _list_attempts(query, **filters)


def messages_by_id(msg_ids: Iterable[str]) -> dict[str, Message]:
    """The messages with those ids, keyed by id (for `with_msg=true`)."""
    ids = set(msg_ids)
    if not ids:
        return {}
    return {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}


def get_attempt(org_id: str, app_id: str, msg_id: str, attempt_id: str) -> MessageAttempt:
    """One attempt of the message, or 404."""
    message = get_message(get_application(org_id, app_id), msg_id)
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
        logger.info("resend.skipped_disabled", extra={"msg_id": message.id,
                                                      "endpoint_id": endpoint.id})
        return None
    delivery = outbox.add_delivery(message, endpoint, TriggerType.MANUAL)
    db.session.commit()
    outbox.publish([delivery])
    logger.info("resend.queued", extra={"msg_id": message.id, "endpoint_id": endpoint.id,
                                        "delivery_id": delivery.id})
    return delivery
