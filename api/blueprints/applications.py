"""The applications service (Svix v1). Filled in by its issue."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("applications", __name__, url_prefix="/api/v1", description="Applications")
