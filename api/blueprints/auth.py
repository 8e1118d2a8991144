"""Authentication service (Svix v1 `authentication`): app portal access links, expire-all,
logout; and Herald's own GET /api/v1/auth/portal-session for the portal page.

Which routes an app portal token may call is decided in api/capabilities.py, not here.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from api import capabilities
from api.auth import current_principal, require_auth
from api.errors import Forbidden
from api.services import app_portal
from serializers.auth import (
    ApplicationTokenExpireIn,
    AppPortalAccessIn,
    AppPortalAccessOut,
    PortalSessionOut,
)

blp = Blueprint("authentication", __name__, url_prefix="/api/v1/auth", description="Authentication")

PORTAL_PATH = "/portal/"


def portal_url(token: str) -> str:
    """The portal page's link for a token: HERALD_PUBLIC_URL (else the host this request came
    in on) + /portal/, the token in the fragment (browsers never send it to a server)."""
    base = current_app.config.get("PUBLIC_URL") or request.host_url
    return f"{base.rstrip('/')}{PORTAL_PATH}#key={token}"


@blp.route("/app-portal-access/<app_id>", methods=["POST"])
@require_auth
@blp.arguments(AppPortalAccessIn)
@blp.response(200, AppPortalAccessOut)
def app_portal_access(data: dict[str, Any], app_id: str) -> Any:
    """A consumer app portal link for the application (created from `application` if
    missing): an `appsk_` token limited to that application and its capabilities."""
    _, token = app_portal.grant_portal_access(current_principal().org_id, app_id, data)
    return {"url": portal_url(token), "token": token}


@blp.route("/app/<app_id>/expire-all", methods=["POST"])
@require_auth
@blp.arguments(ApplicationTokenExpireIn)
@blp.response(204)
def expire_all(data: dict[str, Any], app_id: str) -> ResponseReturnValue:
    """Expire the application's portal tokens in `expiry` seconds (default now); with
    `sessionIds`, only the tokens created with one of them."""
    app_portal.expire_all(current_principal().org_id, app_id, data["expiry"], data["session_ids"])
    return "", 204


@blp.route("/logout", methods=["POST"])
@blp.response(204)
@require_auth
def logout() -> ResponseReturnValue:
    """Revoke the app portal token making the call (401 from then on). For an org token it is
    a 204 and nothing else: those are long-lived API keys, revoked with the CLI."""
    principal = current_principal()
    if principal.is_app_token:
        app_portal.log_out(principal.token_id)
    return "", 204


@blp.route("/portal-session", methods=["GET"])
@require_auth
@blp.response(200, PortalSessionOut)
def portal_session() -> Any:
    """Herald's own (not in Svix): which application an app portal token shows and what it
    may do there; 403 for an org token."""
    principal = current_principal()
    if not principal.is_app_token or principal.app_id is None:
        raise Forbidden("Only app portal tokens have a portal session.")
    app = app_portal.get_portal_application(principal.org_id, principal.app_id)
    return {
        "app_id": app.id,
        "app_uid": app.uid,
        "app_name": app.name,
        "capabilities": capabilities.ordered(capabilities.effective(principal.capabilities)),
        "feature_flags": sorted(principal.feature_flags),
        "expires_at": principal.expires_at,
    }
