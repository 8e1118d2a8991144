"""Org-scoped lookups by id or uid: another org's objects are simply not found (404)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from api.errors import NotFound
from api.extensions import db
from api.models import Application, Endpoint, Message


def find_application(org_id: str, app_id_or_uid: str) -> Application | None:
    """The org's application with that id or uid, or None."""
    if "\x00" in app_id_or_uid:  # PostgreSQL rejects NUL bytes: no such row, not a 500
        return None
    return db.session.scalar(
        select(Application)
        .where(
            Application.org_id == org_id,
            or_(Application.id == app_id_or_uid, Application.uid == app_id_or_uid),
        )
        .order_by((Application.id == app_id_or_uid).desc())  # an exact id match wins over a uid
    )


def get_application(org_id: str, app_id_or_uid: str) -> Application:
    """The org's application, or 404."""
    app = find_application(org_id, app_id_or_uid)
    if app is None:
        raise NotFound()
    return app


def _scoped(model: Any, app: Application, alias: Any, value: str) -> Any:
    """The app's row of `model` whose id or alias column equals `value`, or 404."""
    if "\x00" in value:  # PostgreSQL rejects NUL bytes: no such row
        raise NotFound()
    row = db.session.scalar(
        select(model).where(model.app_id == app.id, or_(model.id == value, alias == value))
    )
    if row is None:
        raise NotFound()
    return row


def get_endpoint(app: Application, endpoint_id_or_uid: str) -> Endpoint:
    """The application's endpoint by id or uid, or 404."""
    endpoint: Endpoint = _scoped(Endpoint, app, Endpoint.uid, endpoint_id_or_uid)
    return endpoint


def get_message(app: Application, msg_id_or_event_id: str) -> Message:
    """The application's message by id or eventId, or 404."""
    message: Message = _scoped(Message, app, Message.event_id, msg_id_or_event_id)
    return message


def get_app_endpoint(org_id: str, app_id_or_uid: str, endpoint_id_or_uid: str) -> Endpoint:
    """The org's endpoint, both path values by id or uid, or 404."""
    return get_endpoint(get_application(org_id, app_id_or_uid), endpoint_id_or_uid)


def get_app_message(org_id: str, app_id_or_uid: str, msg_id_or_event_id: str) -> Message:
    """The org's message, the app by id or uid and the message by id or eventId, or 404."""
    return get_message(get_application(org_id, app_id_or_uid), msg_id_or_event_id)
