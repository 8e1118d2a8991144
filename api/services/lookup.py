"""Org-scoped lookups by id or uid: another org's objects are simply not found (404)."""

from __future__ import annotations

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


def get_endpoint(app: Application, endpoint_id_or_uid: str) -> Endpoint:
    """The application's endpoint by id or uid, or 404."""
    if "\x00" in endpoint_id_or_uid:
        raise NotFound()
    endpoint = db.session.scalar(
        select(Endpoint).where(
            Endpoint.app_id == app.id,
            or_(Endpoint.id == endpoint_id_or_uid, Endpoint.uid == endpoint_id_or_uid),
        )
    )
    if endpoint is None:
        raise NotFound()
    return endpoint


def get_message(app: Application, msg_id_or_event_id: str) -> Message:
    """The application's message by id or eventId, or 404."""
    if "\x00" in msg_id_or_event_id:
        raise NotFound()
    message = db.session.scalar(
        select(Message).where(
            Message.app_id == app.id,
            or_(Message.id == msg_id_or_event_id, Message.event_id == msg_id_or_event_id),
        )
    )
    if message is None:
        raise NotFound()
    return message
