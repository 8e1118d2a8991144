"""Filters shared by the message, attempt and destination lists: time windows as id bounds,
and the message's channels, tags and event type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute

from api.extensions import db
from api.ids import EPOCH, boundary_id, id_timestamp
from api.models import Message
from api.models.common import utcnow

LIST_WINDOW = timedelta(days=90)  # Svix lists at most 90 days around the anchor time
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
        query = query.where(json_array_contains(Message.channels, channel))
    if tag:
        query = query.where(json_array_contains(Message.tags, tag))
    if event_types:
        query = query.where(Message.event_type.in_(event_types))
    return query


def json_array_contains(column: Any, value: str) -> ColumnElement[bool]:
    """`value` is an element of the JSON array in `column` (JSONB @> on PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return type_coerce(column, JSONB).contains([value])
    items = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(items).where(items.c.value == value))
