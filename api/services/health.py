"""Dependency checks for the health endpoint."""

from __future__ import annotations

from sqlalchemy import text

from api.extensions import db, get_redis


def check_dependencies() -> dict[str, str]:
    """Ping the database and Redis; returns {name: error} for each that did not answer."""
    failures: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy", reported, not raised
        db.session.rollback()
        failures["database"] = type(exc).__name__
    try:
        get_redis().ping()
    except Exception as exc:
        failures["redis"] = type(exc).__name__
    return failures
