"""The application factory."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from flask.sessions import SessionInterface
from werkzeug.exceptions import RequestEntityTooLarge

from api.config import ROOT, load_config
from api.extensions import db, init_db_ping, init_redis, migrate, openapi
from api.logging_setup import configure_logging
from api.metrics import init_app as init_metrics

OPENAPI_SETTINGS = {
    "API_TITLE": "Herald",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "components": {"securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"HTTPBearer": []}],
    },
}


class _NoCookieSessions(SessionInterface):
    """Herald authenticates every request by its bearer token and keeps no cookie session:
    Flask's default interface builds a signing serializer per request to look for one."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build a configured Herald app; `overrides` win over defaults and the environment."""
    config = load_config(overrides)
    app = Flask("api", root_path=str(ROOT / "api"), static_folder=None)
    app.config.update(OPENAPI_SETTINGS)
    app.config.update(config)
    app.url_map.strict_slashes = False
    app.session_interface = _NoCookieSessions()
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])

    from api import models  # noqa: F401  (register every table with the metadata)
    from api.services.queue import init_celery

    db.init_app(app)
    init_db_ping(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    init_redis(app)
    init_celery(app)
    init_metrics(app)  # before the request hooks: its timer starts first
    from api.errors import document_errors

    document_errors(app, openapi)
    register_blueprints(app)
    register_request_hooks(app)

    from api.cli import register_cli
    from api.errors import register_error_handlers
    from api.idempotency import register_idempotency

    register_error_handlers(app)  # after flask-smorest, so our JSON shape wins
    register_idempotency(app)
    register_cli(app)
    return app


def register_blueprints(app: Flask) -> None:
    """Import each service's Blueprint here (inside the factory) and register it."""
    from api.blueprints import (
        applications,
        attempts,
        auth,
        background_tasks,
        endpoints,
        event_types,
        health,
        messages,
        operational_webhooks,
        portal,
    )

    for module in (
        health,
        auth,
        applications,
        event_types,
        endpoints,
        messages,
        attempts,
        background_tasks,
        operational_webhooks,
    ):
        openapi.register_blueprint(module.blp)
    app.register_blueprint(portal.blp)  # a web page, not Svix API: kept out of the OpenAPI document
    from api.blueprints import metrics as metrics_blueprint

    app.register_blueprint(metrics_blueprint.blp)  # Prometheus, not Svix API: not in the document


def register_request_hooks(app: Flask) -> None:
    """Give every request an id (the caller's svix-req-id / X-Request-Id, or a new one)."""

    @app.before_request
    def _assign() -> None:
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()  # refuse before auth or parsing even start
        g.request_id = (
            request.headers.get("X-Request-Id")
            or request.headers.get("svix-req-id")
            or uuid.uuid4().hex
        )[:64]

    @app.after_request
    def _echo(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
