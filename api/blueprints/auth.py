"""Authentication service: POST /api/v1/auth/logout (Svix's `authentication.logout`)."""

from __future__ import annotations

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from api.auth import require_auth

blp = Blueprint("authentication", __name__, url_prefix="/api/v1/auth", description="Authentication")


@blp.route("/logout", methods=["POST"])
@blp.response(204)
@require_auth
def logout() -> ResponseReturnValue:
    """204 for a valid token. Herald's tokens are long-lived API keys: revoke them with the CLI."""
    return "", 204
