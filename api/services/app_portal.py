"""The consumer app portal: grant access (an `appsk_` token for one application, creating
the application if asked), describe a token's session, expire an application's tokens."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from api.errors import NotFound, Unprocessable
from api.models import Application
from api.services import applications, tokens
from api.services.lookup import find_application, get_application

logger = logging.getLogger(__name__)

APP_NOT_FOUND = "Application not found"


def _create_application(org_id: str, path_value: str, spec: dict[str, Any] | None) -> Application:
    """The application AppPortalAccessIn.application describes, with uid = the path's value
    (as Svix does), or 404 without one."""
    if spec is None:
        raise NotFound(APP_NOT_FOUND)
    loc: list[str | int] = ["body", "application", "uid"]
    if spec.get("uid") not in (None, path_value):
        raise Unprocessable.at(loc, "application.uid must equal the application uid in the path")
    if path_value.startswith("app_"):
        raise Unprocessable.at(
            loc, "Uids are not allowed to have the same prefix as the ID. Prefix with _?"
        )
    if not applications.UID_RE.fullmatch(path_value):
        raise Unprocessable.at(["path", "app_id"], "Not a valid id or uid.")
    app, _ = applications.create_application(
        org_id, {**spec, "uid": path_value}, get_if_exists=True
    )
    return app


def grant_portal_access(
    org_id: str, app_id_or_uid: str, data: dict[str, Any]
) -> tuple[Application, str]:
    """A new portal token for the org's application (created from `data["application"]` when
    missing); returns (application, plain token). `data` is a loaded AppPortalAccessIn."""
    app = find_application(org_id, app_id_or_uid)
    if app is None:
        app = _create_application(org_id, app_id_or_uid, data["application"])
    row, plain = tokens.create_app_token(
        app,
        data["capabilities"],
        data["feature_flags"],
        data["expiry"],
        session_id=data["session_id"],
    )
    logger.info(
        "app_portal.access_granted",
        extra={
            "org_id": org_id,
            "app_id": app.id,
            "token_id": row.id,
            "capabilities": row.capabilities,
        },
    )
    return app, plain


def get_portal_application(org_id: str, app_id: str) -> Application:
    """The application an app portal token belongs to (404 if it was deleted meanwhile)."""
    return get_application(org_id, app_id)


def expire_all(
    org_id: str, app_id_or_uid: str, expiry_seconds: int, session_ids: Sequence[str] | None
) -> int:
    """Expire the application's portal tokens within `expiry_seconds` (only those created
    with one of `session_ids`, when given); returns how many were shortened."""
    app = get_application(org_id, app_id_or_uid)
    count = tokens.expire_app_tokens(app.id, expiry_seconds, session_ids)
    logger.info(
        "app_portal.tokens_expired",
        extra={"org_id": org_id, "app_id": app.id, "tokens": count, "in_seconds": expiry_seconds},
    )
    return count


def log_out(token_id: str) -> None:
    """Revoke one app portal token (POST /auth/logout with it)."""
    tokens.revoke_app_token(token_id)
    logger.info("app_portal.logged_out", extra={"token_id": token_id})
