"""Messages: ingest (message + its deliveries in one transaction, publish after), read, expunge."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from api.errors import Conflict, NotFound, Unprocessable
from api.extensions import db
from api.ids import is_id, new_id
from api.models import Application, Delivery, Endpoint, Message
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services import outbox
from api.services.filters import id_bounds, message_filters
from api.services.lookup import (
    get_app_message,
    get_application,
)

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
APP_NOT_FOUND = "Application not found"


def endpoint_matches(endpoint: Endpoint, event_type: str, channels: Sequence[str] | None) -> bool:
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


# Built once: ingest is the hot path, and building a statement costs more than running it.
_APP_WITH_ENDPOINTS = (
    select(Application, Endpoint)
    .outerjoin(Endpoint, and_(Endpoint.app_id == Application.id, Endpoint.disabled.is_(False)))
    .where(
        Application.org_id == bindparam("org_id"),
        or_(Application.id == bindparam("key"), Application.uid == bindparam("key")),
    )
    .order_by((Application.id == bindparam("key")).desc())  # an exact id match wins
)
_INSERT_MESSAGE = insert(Message.__table__)


def _application_with_endpoints(
    org_id: str, app_id_or_uid: str
) -> tuple[Application | None, list[Endpoint]]:
    """The app (by id or uid, as lookup.find_application) and its enabled endpoints, in one
    round trip."""
    if "\x00" in app_id_or_uid:  # PostgreSQL rejects NUL bytes: no such app
        return None, []
    rows = db.session.execute(_APP_WITH_ENDPOINTS, {"org_id": org_id, "key": app_id_or_uid})
    app, endpoints = None, []
    for owner, endpoint in rows:
        app = app or owner
        if owner is app and endpoint is not None:
            endpoints.append(endpoint)
    return app, endpoints


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
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name == constraint if name else constraint.split("_", 1)[1] in str(exc.orig)


def _commit_keeping_state() -> None:
    """Commit without expiring loaded objects: the response and the publish need no reload."""
    session = db.session()
    previous, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = previous


def _insert_message(
    org_id: str, app_id_or_uid: str, data: dict[str, Any]
) -> tuple[Message, list[Delivery]]:
    """Message + one leased delivery per matching endpoint, committed together."""
    app, endpoints = _application_with_endpoints(org_id, app_id_or_uid)
    if app is None:
        app = _new_application(org_id, app_id_or_uid, data.get("application"))
        db.session.flush()  # the message row references it
    now = utcnow()
    row = {
        "id": new_id("msg", now.timestamp()),
        "app_id": app.id,
        "org_id": org_id,
        "event_id": data.get("event_id"),
        "event_type": data["event_type"],
        "payload": data["payload_text"],
        "channels": data.get("channels"),
        "tags": data.get("tags"),
        "expiration": now + _retention(data),
        "created_at": now,
    }
    # A Core INSERT (no unit of work) that runs now, so it precedes the deliveries' INSERT;
    # the transient Message carries the same values to the deliveries and the response.
    db.session.connection().execute(_INSERT_MESSAGE, row)
    message = Message(**row)
    deliveries = [
        outbox.add_delivery(message, endpoint)
        for endpoint in endpoints
        if endpoint_matches(endpoint, message.event_type, message.channels)
    ]
    _commit_keeping_state()
    return message, deliveries


def create_message(org_id: str, app_id_or_uid: str, data: dict[str, Any]) -> Message:
    """Store a message (auto-creating its app if asked), then publish its deliveries."""
    for attempt in range(2):
        try:
            message, deliveries = _insert_message(org_id, app_id_or_uid, data)
            break
        except IntegrityError as exc:
            db.session.rollback()
            if _violated(exc, "uq_message_app_id_event_id"):
                raise Conflict() from None
            if attempt == 0 and _violated(exc, "uq_application_org_id_uid"):
                continue  # a concurrent request created the app first: use it
            raise
    outbox.publish(deliveries)
    return message


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
