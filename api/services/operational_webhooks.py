"""Operational-webhook endpoints (/api/v1/operational-webhook/endpoint): the endpoints of the
org's internal application, managed with the endpoints service. The events they receive are
sent by api/services/operational_events.py.

The internal application is created with the org's first operational-webhook endpoint; it is
flagged `internal`, never listed by GET /api/v1/app, and its uid (`herald/operational`) is
no uid a caller can give or put in a path.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.errors import NotFound, Unprocessable
from api.extensions import db
from api.models import Application, Endpoint
from api.pagination import Page
from api.services import endpoints
from api.services.lookup import get_endpoint
from api.services.operational_events import EVENT_TYPES, INTERNAL_UID

logger = logging.getLogger(__name__)

INTERNAL_NAME = "Herald operational webhooks"


def find_internal_app(org_id: str) -> Application | None:
    """The org's internal application, or None."""
    return db.session.scalar(
        select(Application).where(Application.org_id == org_id, Application.internal)
    )


def internal_app(org_id: str) -> Application:
    """The org's internal application, created (and committed) on first use."""
    app = find_internal_app(org_id)
    if app is not None:
        return app
    app = Application(org_id=org_id, uid=INTERNAL_UID, name=INTERNAL_NAME, internal=True)
    app.metadata_ = {}
    db.session.add(app)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent request created it first (unique org_id + uid)
        db.session.rollback()
        app = find_internal_app(org_id)
        if app is None:
            raise
        return app
    logger.info("operational_webhook.app_created", extra={"org_id": org_id, "app_id": app.id})
    return app


def _existing_app(org_id: str) -> Application:
    """The internal application, or 404 (no operational endpoint was ever created)."""
    app = find_internal_app(org_id)
    if app is None:
        raise NotFound()
    return app


def _check_event_types(data: dict[str, Any]) -> None:
    """Operational endpoints filter on the operational event types only (422 otherwise)."""
    unknown = [name for name in data.get("event_types") or [] if name not in EVENT_TYPES]
    if unknown:
        raise Unprocessable.at(
            ["body", "eventTypes"], "The following event types don't exist: " + ", ".join(unknown)
        )


def list_operational_endpoints(
    org_id: str, limit: int, iterator: str | None, order: str | None = None
) -> Page:
    """One page of the org's operational-webhook endpoints, newest first unless ascending."""
    app = find_internal_app(org_id)
    if app is None:
        return Page([], None, None, True)
    return endpoints.list_endpoints(org_id, app.id, limit, iterator, order)


def create_operational_endpoint(org_id: str, data: dict[str, Any]) -> Endpoint:
    """Create an operational-webhook endpoint (the internal application on first use)."""
    _check_event_types(data)
    return endpoints.create_endpoint(org_id, internal_app(org_id).id, data)


def get_operational_endpoint(org_id: str, endpoint_id_or_uid: str) -> Endpoint:
    """The operational-webhook endpoint by id or uid, or 404."""
    return get_endpoint(_existing_app(org_id), endpoint_id_or_uid)


def upsert_operational_endpoint(
    org_id: str, endpoint_id_or_uid: str, data: dict[str, Any]
) -> tuple[Endpoint, bool]:
    """Replace the operational-webhook endpoint, or create it. Returns (endpoint, created)."""
    _check_event_types(data)
    return endpoints.upsert_endpoint(org_id, internal_app(org_id).id, endpoint_id_or_uid, data)


def delete_operational_endpoint(org_id: str, endpoint_id_or_uid: str) -> None:
    """Delete the operational-webhook endpoint."""
    endpoints.delete_endpoint(org_id, _existing_app(org_id).id, endpoint_id_or_uid)


def get_operational_endpoint_secret(org_id: str, endpoint_id_or_uid: str) -> str:
    """What the owner verifies the operational webhooks with."""
    return endpoints.get_endpoint_secret(org_id, _existing_app(org_id).id, endpoint_id_or_uid)


def rotate_operational_endpoint_secret(
    org_id: str, endpoint_id_or_uid: str, key: str | None, grace_period_seconds: int | None
) -> str:
    """Rotate the signing secret (the old one stays valid for the grace period)."""
    app_id = _existing_app(org_id).id
    return endpoints.rotate_endpoint_secret(
        org_id, app_id, endpoint_id_or_uid, key=key, grace_period_seconds=grace_period_seconds
    )


def get_operational_endpoint_headers(org_id: str, endpoint_id_or_uid: str) -> dict[str, Any]:
    """The custom headers, sensitive values withheld."""
    return endpoints.get_endpoint_headers(org_id, _existing_app(org_id).id, endpoint_id_or_uid)


def set_operational_endpoint_headers(
    org_id: str, endpoint_id_or_uid: str, headers: dict[str, str | None]
) -> None:
    """Replace the custom headers."""
    app_id = _existing_app(org_id).id
    endpoints.update_endpoint_headers(org_id, app_id, endpoint_id_or_uid, headers, replace=True)
