"""Fixtures and helpers shared by the endpoints API test modules (test_endpoints*.py).

A module uses a fixture by binding it at module level
(`application = endpoints_support.application`, which overrides tests/api/conftest.py's
`application` for that module); nothing here is collected as a test.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import db
from api.models import Endpoint
from api.services.tokens import create_token

Headers = dict[str, str]
BASE = "/api/v1/app/shop/endpoint"
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


@pytest.fixture
def other_headers(db_session: object) -> Headers:
    """Authorization headers for a second org."""
    _, plain = create_token("other-org")
    return {"Authorization": f"Bearer {plain}"}


@pytest.fixture
def application(client: FlaskClient, auth_headers: Headers) -> dict[str, Any]:
    """An application with uid `shop` and two live event types plus an archived one."""
    for name in ("user.signup", "order.paid", "old.thing"):
        client.post(
            "/api/v1/event-type", json={"name": name, "description": name}, headers=auth_headers
        )
    client.delete("/api/v1/event-type/old.thing", headers=auth_headers)
    response = client.post(
        "/api/v1/app", json={"name": "Shop", "uid": "shop"}, headers=auth_headers
    )
    body: dict[str, Any] = response.get_json()
    return body


def post_endpoint(client: FlaskClient, auth: Headers, path: str = BASE, **body: Any) -> Any:
    """POST an endpoint with a default URL."""
    return client.post(path, json={"url": "https://example.com/hook", **body}, headers=auth)


def stored(endpoint_id: str) -> Endpoint:
    """The endpoint row, fresh from the database."""
    db.session.expire_all()
    row = db.session.scalar(select(Endpoint).where(Endpoint.id == endpoint_id))
    assert row is not None
    return row
