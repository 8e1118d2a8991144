"""Applications: create, get-or-create, list, upsert, patch, delete (org-scoped, one commit)."""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.errors import Conflict, Unprocessable
from api.extensions import db
from api.models import Application, Delivery, Endpoint
from api.pagination import Page, paginate
from api.services.delivery import outbox
from api.services.lookup import find_application, get_application

logger = logging.getLogger(__name__)

APP_CONFLICT = "An application with that id or uid already exists"
UID_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,256}$")
FIELDS = ("name", "uid", "throttle_rate", "metadata_")


def _apply(app: Application, data: dict[str, Any]) -> None:
    """Copy the loaded fields present in `data` onto the model (metadata null means {})."""
    for name in FIELDS:
        if name in data:
            value = data[name]
            if name == "metadata_" and value is None:
                value = {}
            setattr(app, name, value)


def _find_by_uid(org_id: str, uid: str) -> Application | None:
    return db.session.scalar(
        select(Application).where(Application.org_id == org_id, Application.uid == uid)
    )


def _commit(app: Application) -> Application:
    """Commit; a uid clash (also a concurrent one) becomes 409, never 500."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(APP_CONFLICT) from None
    return app


def create_application(
    org_id: str, data: dict[str, Any], get_if_exists: bool = False
) -> tuple[Application, bool]:
    """Create an app; with `get_if_exists` return the existing app with the body's uid.

    Returns (application, created).
    """
    uid = data.get("uid")
    if uid is not None:
        existing = _find_by_uid(org_id, uid)
        if existing is not None:
            if get_if_exists:
                return existing, False
            raise Conflict(APP_CONFLICT)
    app = Application(org_id=org_id)
    _apply(app, {"throttle_rate": None, "metadata_": {}, **data})
    db.session.add(app)
    try:
        _commit(app)
    except Conflict:
        if get_if_exists and uid is not None:  # lost a race against an identical request
            found = _find_by_uid(org_id, uid)
            if found is not None:
                return found, False
        raise
    logger.info("application.created", extra={"org_id": org_id, "app_id": app.id})
    return app, True


def list_applications(
    org_id: str,
    limit: int,
    iterator: str | None,
    order: str | None = None,
    without_endpoints: bool = True,
    only_disabled: bool = True,
) -> Page:
    """One page of the org's applications, ascending by id unless `order` is descending;
    `without_endpoints=False` leaves out apps with no endpoint, `only_disabled=False` those
    whose endpoints are all disabled (and so those with none)."""
    query = select(Application).where(Application.org_id == org_id, ~Application.internal)
    owned = select(Endpoint.id).where(Endpoint.app_id == Application.id)
    if not only_disabled:
        query = query.where(owned.where(~Endpoint.disabled).exists())
    elif not without_endpoints:
        query = query.where(owned.exists())
    return paginate(query, Application.id, limit, iterator, descending=order == "descending")


def upsert_application(
    org_id: str, app_id_or_uid: str, data: dict[str, Any]
) -> tuple[Application, bool]:
    """Replace the app's fields, or create it; a path value that is not an `app_` id becomes
    the new app's uid unless the body has one. Returns (application, created)."""
    app = find_application(org_id, app_id_or_uid)
    path_uid = None if app_id_or_uid.startswith("app_") else app_id_or_uid
    if path_uid is not None and not UID_RE.fullmatch(path_uid):
        raise Unprocessable.at(["path", "app_id"], "Not a valid id or uid.")
    fields = {"throttle_rate": None, "metadata_": {}, **data}
    if fields.get("uid") is None and path_uid is not None:
        fields["uid"] = path_uid
    if fields.get("uid") is not None:
        other = _find_by_uid(org_id, fields["uid"])
        if other is not None and other is not app:
            raise Conflict(APP_CONFLICT)
    created = app is None
    if app is None:
        app = Application(org_id=org_id)
        db.session.add(app)
    _apply(app, fields)
    return _commit(app), created


def patch_application(org_id: str, app_id_or_uid: str, data: dict[str, Any]) -> Application:
    """Update only the fields present in `data` (null clears uid / throttleRate)."""
    app = get_application(org_id, app_id_or_uid)
    uid = data.get("uid")
    if uid is not None:
        other = _find_by_uid(org_id, uid)
        if other is not None and other is not app:
            raise Conflict(APP_CONFLICT)
    _apply(app, data)
    return _commit(app)


def delete_application(org_id: str, app_id_or_uid: str) -> None:
    """Delete the app; its endpoints, messages and attempts go with it (ON DELETE CASCADE)."""
    app = get_application(org_id, app_id_or_uid)
    outbox.delete_deliveries(Delivery.app_id == app.id)
    db.session.delete(app)
    db.session.commit()
    logger.info("application.deleted", extra={"org_id": org_id, "app_id": app.id})
