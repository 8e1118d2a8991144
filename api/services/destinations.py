"""A message's status at each destination: attempted messages/destinations and endpoint stats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from api.errors import BadRequest
from api.extensions import db
from api.ids import boundary_id
from api.models import Delivery, Endpoint, Message, MessageStatus
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services.filters import clamp_moment, id_bounds, message_filters
from api.services.lookup import (
    get_app_endpoint,
    get_app_message,
)

STATS_DEFAULT = timedelta(days=28)
STATS_MAX = timedelta(days=28, minutes=5)
CLOCK_SLACK = timedelta(minutes=5)
# A destination shows the most active status among its deliveries (one per run or resend).
PRECEDENCE = (
    MessageStatus.SENDING,
    MessageStatus.PENDING,
    MessageStatus.SUCCESS,
    MessageStatus.FAIL,
)


class StatusView:
    """A message or endpoint row plus its status at the other side; reads fall through to it."""

    def __init__(self, row: Any, status: int, next_attempt: datetime | None) -> None:
        self.row, self.status, self.next_attempt = row, status, next_attempt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def status_columns() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Aggregates over a group of deliveries: (destination status, its next attempt time).

    "Some delivery of the group has status s" is max(status = s ? 1 : 0) = 1, which both
    PostgreSQL and SQLite evaluate (PostgreSQL's bool_or is not in SQLite).
    """
    status = case(
        *((func.max(case((Delivery.status == s, 1), else_=0)) == 1, int(s)) for s in PRECEDENCE),
        else_=int(MessageStatus.CANCELED),
    )
    sending = Delivery.status == MessageStatus.SENDING
    return status, func.min(Delivery.next_attempt_at).filter(sending)


def _statuses(key: Any, *where: Any) -> dict[str, tuple[int, datetime | None]]:
    status, next_attempt = status_columns()
    rows = db.session.execute(select(key, status, next_attempt).where(*where).group_by(key))
    return {row[0]: (int(row[1]), row[2]) for row in rows}


def _views(rows: Iterable[Any], statuses: dict[str, tuple[int, datetime | None]]) -> list[Any]:
    return [StatusView(row, *statuses[row.id]) for row in rows if row.id in statuses]


def list_attempted_messages(
    org_id: str,
    app_id: str,
    endpoint_id: str,
    *,
    limit: int,
    iterator: str | None,
    status: int | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
    channel: str | None = None,
    tag: str | None = None,
    event_types: list[str] | None = None,
) -> Page:
    """Messages sent (or being sent) to the endpoint, newest first, with their status there."""
    endpoint = get_app_endpoint(org_id, app_id, endpoint_id)
    bounds = id_bounds(Delivery.msg_id, "msg", before, after, iterator)
    agg_status, _ = status_columns()
    sub = (
        select(Delivery.msg_id, agg_status.label("status"))
        .where(Delivery.endpoint_id == endpoint.id, *bounds)
        .group_by(Delivery.msg_id)
        .subquery()
    )
    query = select(Message).join(sub, sub.c.msg_id == Message.id)
    if status is not None:
        query = query.where(sub.c.status == status)
    query = message_filters(query, channel, tag, event_types)
    page = paginate(query, Message.id, limit, iterator, descending=True)
    statuses = _statuses(
        Delivery.msg_id,
        Delivery.endpoint_id == endpoint.id,
        Delivery.msg_id.in_([m.id for m in page.data]),
    )
    page.data = _views(page.data, statuses)
    return page


def list_attempted_destinations(
    org_id: str, app_id: str, msg_id: str, *, limit: int, iterator: str | None
) -> Page:
    """Endpoints the message was sent (or is being sent) to, by ascending id, with status."""
    message = get_app_message(org_id, app_id, msg_id)
    targeted = select(Delivery.endpoint_id).where(Delivery.msg_id == message.id)
    query = select(Endpoint).where(Endpoint.id.in_(targeted))
    page = paginate(query, Endpoint.id, limit, iterator)
    statuses = _statuses(
        Delivery.endpoint_id,
        Delivery.msg_id == message.id,
        Delivery.endpoint_id.in_([e.id for e in page.data]),
    )
    page.data = _views(page.data, statuses)
    return page


def stats_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The [since, until) window of a stats query (default: the last 28 days), or 400."""
    now = utcnow()
    until = clamp_moment(until or now)
    since = clamp_moment(since) if since else until - STATS_DEFAULT
    if since >= until or until - since > STATS_MAX or until > now + CLOCK_SLACK:
        raise BadRequest(
            "invalid_range",
            "The range must be at most 28 days, in the past, with since before until.",
        )
    return since, until


def endpoint_stats(
    org_id: str, app_id: str, endpoint_id: str, since: datetime | None, until: datetime | None
) -> dict[str, int]:
    """How many messages created in the window are in each status at the endpoint."""
    endpoint = get_app_endpoint(org_id, app_id, endpoint_id)
    since, until = stats_window(since, until)
    agg_status, _ = status_columns()
    per_message = (
        select(agg_status.label("status"))
        .where(
            Delivery.endpoint_id == endpoint.id,
            Delivery.msg_id >= boundary_id("msg", since),
            Delivery.msg_id < boundary_id("msg", until),
        )
        .group_by(Delivery.msg_id)
        .subquery()
    )
    rows = db.session.execute(
        select(per_message.c.status, func.count()).group_by(per_message.c.status)
    )
    counts = {int(status): int(count) for status, count in rows}
    return {s.name.lower(): counts.get(int(s), 0) for s in MessageStatus}
