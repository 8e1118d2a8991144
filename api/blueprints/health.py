"""Health: GET /api/v1/health (DB + Redis) and /api/v1/health/ping (process only)."""

from __future__ import annotations

import logging

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from api.services.health import check_dependencies

logger = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="/api/v1/health", description="Health checks")


@blp.route("", methods=["GET", "HEAD"])
@blp.response(204)
def health() -> ResponseReturnValue:
    """204 when the database and Redis answer, else 503 with what failed."""
    failures = check_dependencies()
    if failures:
        detail = "; ".join(f"{name}: {error}" for name, error in failures.items())
        return jsonify({"code": "unhealthy", "detail": detail}), 503
    return "", 204


@blp.route("/ping", methods=["GET", "HEAD"])
@blp.response(204)
def ping() -> ResponseReturnValue:
    """204 without touching any dependency (liveness)."""
    return "", 204
