"""Property-based fuzzing of every documented operation with schemathesis (no 5xx, and every
response matches the app's own /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import select

from api import create_app
from api.extensions import db
from api.models import Application, Endpoint, Message, Organization
from tests.conftest import test_overrides

MAX_EXAMPLES = 20
# Path values that name real objects, so fuzzed requests get past the 404s to the real work.
FIXED_PATH = {"app_id": "fuzz-app", "endpoint_id": "fuzz-ep", "msg_id": "fuzz-msg"}


# Loaded at import from a throw-away app (building the document needs no database); requests go
# in-process (WSGI) to the session's `app`, inside the test's rolled-back transaction.
# (schemathesis.pytest.from_fixture would defer this, but it breaks on pytest 9.2: `_nodeid`.)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", create_app(test_overrides()))


def ensure_fixtures() -> None:
    """(Re)create the app, endpoint and message the fixed path values point at: a fuzzed
    DELETE may have removed them in an earlier example."""
    org_id = db.session.scalar(select(Organization.id).where(Organization.name == "test-org"))
    app = db.session.scalar(select(Application).where(Application.uid == "fuzz-app"))
    if app is None:
        app = Application(org_id=org_id, name="Fuzz", uid="fuzz-app")
        db.session.add(app)
        db.session.flush()
    if db.session.scalar(select(Endpoint.id).where(Endpoint.uid == "fuzz-ep")) is None:
        db.session.add(
            Endpoint(
                app_id=app.id,
                uid="fuzz-ep",
                url="https://example.com/h",
                secret="whsec_" + "A" * 32,
            )
        )
    if db.session.scalar(select(Message.id).where(Message.event_id == "fuzz-msg")) is None:
        db.session.add(
            Message(
                app_id=app.id,
                org_id=org_id,
                event_id="fuzz-msg",
                event_type="fuzz",
                payload='{"a":1}',
                expiration=db.func.now(),
            )
        )
    db.session.commit()


@pytest.mark.slow  # about a minute: ~40 operations x MAX_EXAMPLES requests
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a CI failure reproduces locally
    suppress_health_check=list(HealthCheck),
)
def test_api_never_errors_and_matches_its_schema(
    case: Any, app: Flask, db_session: object, auth_headers: dict[str, str]
) -> None:
    ensure_fixtures()
    for name, value in FIXED_PATH.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    case.call_and_validate(
        app=app, headers=auth_headers, checks=[not_a_server_error, response_schema_conformance]
    )
