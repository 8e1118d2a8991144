"""Messages: ingest (message + its deliveries in one transaction, publish after), read, expunge."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, UniqueConstraint, insert, or_, select
from sqlalchemy.exc import IntegrityError

from api import metrics
from api.errors import Conflict, NotFound, Unprocessable
from api.extensions import db
from api.ids import is_id, new_id
from api.models import Application, Delivery, Endpoint, Message
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services import routing
from api.services.delivery import outbox
from api.services.filters import id_bounds, message_filters
from api.services.lookup import (
    get_app_message,
    get_application,
)

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
APP_NOT_FOUND = "Application not found"


class Routable(Protocol):
    """What routing reads of an endpoint (an Endpoint, or a row of its columns)."""

    disabled: bool
    event_types: list[str] | None
    channels: list[str] | None


def endpoint_matches(endpoint: Routable, event_type: str, channels: Sequence[str] | None) -> bool:
    """Svix's automatic-delivery filter: enabled, event type allowed, a channel in common."""
    if endpoint.disabled:
        return False
    if endpoint.event_types and event_type not in endpoint.event_types:
        return False
    if endpoint.channels:  # a message without channels never reaches a channel-filtered endpoint
        return bool(channels) and not set(endpoint.channels).isdisjoint(channels or ())
    return True


def _retention(data: dict[str, Any]) -> timedelta:
    if data.get("payload_retention_hours"):
        return timedelta(hours=data["payload_retention_hours"])
    return timedelta(days=data.get("payload_retention_period") or DEFAULT_RETENTION_DAYS)


def _new_application(org_id: str, path_value: str, spec: dict[str, Any] | None) -> Application:
    """The application described by MessageIn.application, added (not committed), or 404."""
    if spec is None:
        raise NotFound(APP_NOT_FOUND)
    if spec.get("uid") != path_value:
        raise Unprocessable.at(
            ["body", "application", "uid"],
            "application.uid must equal the application id or uid used in the path",
        )
    if is_id(path_value, "app"):
        raise Unprocessable.at(
            ["body", "application", "uid"],
            "Uids are not allowed to have the same prefix as the ID. Prefix with _?",
        )
    app = Application(
        id=new_id("app"),
        org_id=org_id,
        uid=path_value,
        name=spec["name"],
        throttle_rate=spec.get("throttle_rate"),
        metadata_=spec.get("metadata") or {},
    )
    db.session.add(app)
    return app


def _violated(exc: IntegrityError, constraint: str) -> bool:
    """Whether `exc` broke the named constraint.

    PostgreSQL names the constraint. SQLite names a unique constraint's columns ("UNIQUE
    constraint failed: message.app_id, message.event_id") and nothing of a foreign key, so
    there any foreign-key failure counts as each foreign key's.
    """
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if name:
        return bool(name == constraint)
    text = str(exc.orig)
    if text.startswith("UNIQUE constraint failed: "):
        return set(text.split(": ", 1)[1].split(", ")) == _unique_columns(constraint)
    return text.startswith("FOREIGN KEY constraint failed") and constraint.startswith("fk_")


def _unique_columns(constraint: str) -> set[str]:
    """`table.column` names of the named unique constraint, as SQLite reports them."""
    for table in db.metadata.tables.values():
        for item in table.constraints:
            if isinstance(item, UniqueConstraint) and item.name == constraint:
                return {f"{table.name}.{column.name}" for column in item.columns}
    return set()


def message_row(org_id: str, app_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The column values of a new message of the app from loaded MessageIn fields (its id from
    now, its payload kept for the retention asked, 90 days by default)."""
    now = utcnow()
    return {
        "id": new_id("msg", now.timestamp()),
        "app_id": app_id,
        "org_id": org_id,
        "event_id": data.get("event_id"),
        "event_type": data["event_type"],
        "payload": data["payload_text"],
        "channels": data.get("channels"),
        "tags": data.get("tags"),
        "expiration": now + _retention(data),
        "raw": data.get("raw", False),
        "content_type": data.get("content_type"),
        "deliver_at": data.get("deliver_at"),
        "created_at": now,
    }


def _insert_message(
    org_id: str, app_id_or_uid: str, data: dict[str, Any]
) -> tuple[Message, list[dict[str, Any]]]:
    """Message + one due delivery per matching endpoint, committed together, routed with the
    app's cached routing while it is current (routing.py; read again when it is not)."""
    route = routing.cached(org_id, app_id_or_uid)
    for _ in range(ROUTING_TRIES):
        if route is None:
            app = _new_application(org_id, app_id_or_uid, data.get("application"))
            db.session.flush()  # the message row references it
            route = routing.Route(app.id, 0, ())
        row = message_row(org_id, route.app_id, data)
        matching = [
            endpoint.id
            for endpoint in route.endpoints
            if endpoint_matches(endpoint, row["event_type"], row["channels"])
        ]
        deliveries = outbox.due_rows(row, matching)
        if routing.store(app_id_or_uid, route, row, deliveries):
            return Message(**row), deliveries
        route = routing.read(org_id, app_id_or_uid)  # an endpoint changed since: route again
    raise Conflict("The application's endpoints kept changing while the message was stored; retry.")


# Constraints a concurrent request can break between our read and our insert: it created the
# app first (use it), deleted an endpoint (route without it) or deleted the app (404).
_RACES = (
    "uq_application_org_id_uid",
    "fk_delivery_endpoint_id_endpoint",
    "fk_message_app_id_application",
)
ROUTING_TRIES = 5


def create_message(org_id: str, app_id_or_uid: str, data: dict[str, Any]) -> Message:
    """Store a message (auto-creating its app if asked), then wake a pump for its deliveries."""
    for attempt in range(2):
        try:
            message, deliveries = _insert_message(org_id, app_id_or_uid, data)
            break
        except IntegrityError as exc:
            db.session.rollback()
            if _violated(exc, "uq_message_app_id_event_id"):
                raise Conflict() from None
            if attempt == 0 and any(_violated(exc, name) for name in _RACES):
                routing.CACHE.drop(org_id, app_id_or_uid)
                continue  # the app or an endpoint changed since we read them: read again
            raise
    metrics.count_message_accepted()
    if deliveries:
        outbox.wake()
    return message


def stage_message(org_id: str, app_id: str, event_type: str, payload_text: str) -> int:
    """Add a message of the app and one due delivery per matching endpoint to the session's
    transaction, without committing: it commits with the caller's work (operational events,
    api/services/operational_events.py). Returns how many deliveries were added; a running
    pump or the dispatcher's next pass sends them."""
    row = message_row(org_id, app_id, {"event_type": event_type, "payload_text": payload_text})
    matching = [e.id for e in _enabled_endpoints(app_id) if endpoint_matches(e, event_type, None)]
    deliveries = outbox.due_rows(row, matching)
    connection = db.session.connection()
    connection.execute(insert(Message.__table__), row)
    if deliveries:
        connection.execute(insert(Delivery.__table__), deliveries)
    return len(deliveries)


def list_messages(
    org_id: str,
    app_id_or_uid: str,
    *,
    limit: int,
    iterator: str | None = None,
    channel: str | None = None,
    tag: str | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
    event_types: Sequence[str] | None = None,
) -> Page:
    """A page of the app's messages, newest first; ids are time-sortable, so time bounds are
    id bounds on the (app_id, id) index."""
    app = get_application(org_id, app_id_or_uid)
    query: Select[Any] = select(Message).where(
        Message.app_id == app.id, *id_bounds(Message.id, "msg", before, after, iterator)
    )
    query = message_filters(query, channel, tag, list(event_types or []))
    return paginate(query, Message.id, limit, iterator, descending=True)


def expunge_message_content(org_id: str, app_id_or_uid: str, msg_id_or_event_id: str) -> None:
    """Delete the stored payload now; reads with content then show `{"expired": true}`."""
    message = get_app_message(org_id, app_id_or_uid, msg_id_or_event_id)
    message.payload = None
    db.session.commit()
    logger.info("message.expunged", extra={"msg_id": message.id, "app_id": message.app_id})


def precheck_message(
    org_id: str, app_id_or_uid: str, event_type: str, channels: Sequence[str] | None
) -> bool:
    """Whether a message of that event type and channels would reach any endpoint of the app
    (enabled and matching its filters, exactly as ingest routes), or 404 for no such app."""
    app = get_application(org_id, app_id_or_uid)
    return any(endpoint_matches(e, event_type, channels) for e in _enabled_endpoints(app.id))


def _enabled_endpoints(app_id: str) -> Any:
    """The routing columns of the app's enabled endpoints (read now, not from routing's
    cache: for work that is not the ingest hot path)."""
    return db.session.execute(
        select(Endpoint.id, Endpoint.disabled, Endpoint.event_types, Endpoint.channels).where(
            Endpoint.app_id == app_id, Endpoint.disabled.is_(False)
        )
    )


BULK_EXPUNGE_CHUNK = 500  # ids per lookup: far below SQLite's bound-parameter limit


def bulk_expunge_message_content(
    org_id: str, app_id_or_uid: str, ids: Sequence[str]
) -> dict[str, str]:
    """Delete the payloads of the app's messages named by id or eventId; each given id maps to
    `expunged` or `not-found`."""
    app = get_application(org_id, app_id_or_uid)
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), BULK_EXPUNGE_CHUNK):
        chunk = set(wanted[start : start + BULK_EXPUNGE_CHUNK])
        for message in db.session.scalars(
            select(Message).where(
                Message.app_id == app.id, or_(Message.id.in_(chunk), Message.event_id.in_(chunk))
            )
        ):
            message.payload = None
            found.update(key for key in (message.id, message.event_id) if key in chunk)
    db.session.commit()
    logger.info("message.bulk_expunged", extra={"app_id": app.id, "messages": len(found)})
    return {key: "expunged" if key in found else "not-found" for key in wanted}
