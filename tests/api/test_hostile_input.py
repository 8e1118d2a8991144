"""Hostile input gets a 4xx in Svix's shape and stores nothing: huge JSON numbers, trailing
newlines after patterned values, over-long nested names, impossible endpoint ports."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import inspect, select

from api.extensions import db
from api.models import Application, Endpoint, EventType, Message

Headers = dict[str, str]
BIG_NUMBER = "1" * 4301  # one digit over Python's int() limit (sys.get_int_max_str_digits())
SECRET = "whsec_" + base64.b64encode(b"h" * 24).decode()
URL = "https://example.com/hook"
EP = "/api/v1/app/shop/endpoint"
MSG = "/api/v1/app/shop/msg"
STORED = (Application, Endpoint, EventType, Message)


@pytest.fixture
def world(client: FlaskClient, auth_headers: Headers) -> None:
    """App `shop`, event type `user.signup` and endpoint `ep1` (made through the API)."""
    for method, path, body in (
        ("POST", "/api/v1/app", {"name": "Shop", "uid": "shop"}),
        ("POST", "/api/v1/event-type", {"name": "user.signup", "description": "d"}),
        ("POST", EP, {"url": URL, "uid": "ep1"}),
    ):
        response = client.open(path, method=method, json=body, headers=auth_headers)
        assert response.status_code == 201, response.get_json()


def snapshot() -> set[tuple[str, str]]:
    """Every column of every stored app, endpoint, event type and message."""
    db.session.expire_all()
    return {
        (model.__name__, repr([getattr(row, a.key) for a in inspect(model).column_attrs]))
        for model in STORED
        for row in db.session.scalars(select(model))
    }


def post_json(client: FlaskClient, path: str, text: str, headers: Headers) -> Any:
    """POST a body given as JSON text (the test client's `json=` cannot hold a huge number)."""
    return client.post(path, data=text, content_type="application/json", headers=headers)


def assert_jsondecode_422(response: Any) -> None:
    """The answer Herald gives malformed JSON."""
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert response.get_json()["detail"][0]["type"] == "value_error.jsondecode"


# --- a JSON number of more than 4,300 digits ---------------------------------------------------


def test_create_app_with_huge_number_returns_422_and_stores_nothing(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    before = snapshot()
    body = '{"name": "Big", "uid": "big", "throttleRate": ' + BIG_NUMBER + "}"
    assert_jsondecode_422(post_json(client, "/api/v1/app", body, auth_headers))
    assert snapshot() == before


def test_create_message_with_huge_number_in_payload_returns_422_and_stores_nothing(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    before = snapshot()
    body = '{"eventType": "user.signup", "payload": {"n": -' + BIG_NUMBER + "}}"
    assert_jsondecode_422(post_json(client, MSG, body, auth_headers))
    assert snapshot() == before


def test_create_message_with_number_at_the_digit_limit_is_accepted(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    body = '{"eventType": "user.signup", "payload": {"n": ' + BIG_NUMBER[1:] + "}}"
    assert post_json(client, MSG, body, auth_headers).status_code == 202


def test_every_json_route_answers_huge_number_with_422(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "shop", path))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch")
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(routes) >= 10  # apps, event types, endpoints, headers, secrets, messages...
    body = '{"ignored": ' + BIG_NUMBER + "}"
    for method, path in routes:
        response = client.open(
            path, method=method, data=body, content_type="application/json", headers=auth_headers
        )
        assert response.status_code == 422, (method, path, response.status_code)
        assert response.get_json()["detail"][0]["type"] == "value_error.jsondecode", (method, path)


# --- a trailing newline after a patterned value ------------------------------------------------

# Each case builds a request from `nl` ("\n", or "" for the control request that must succeed);
# path values carry it URL-encoded.
Case = Callable[[str], tuple[str, str, dict[str, Any]]]
MESSAGE = {"eventType": "user.signup", "payload": {"a": 1}}


def _path(nl: str) -> str:
    """The newline as it travels in a URL path or query."""
    return "%0A" if nl else ""


NEWLINE_CASES: dict[str, Case] = {
    "app uid": lambda nl: ("POST", "/api/v1/app", {"name": "A", "uid": "new" + nl}),
    "app uid in path": lambda nl: ("PUT", "/api/v1/app/new" + _path(nl), {"name": "A"}),
    "app uid patched": lambda nl: ("PATCH", "/api/v1/app/shop", {"uid": "new" + nl}),
    "endpoint uid": lambda nl: ("POST", EP, {"url": URL, "uid": "ep2" + nl}),
    "endpoint uid in path": lambda nl: ("PUT", EP + "/ep2" + _path(nl), {"url": URL}),
    "endpoint event type": lambda nl: (
        "POST",
        EP,
        {"url": URL, "eventTypes": ["user.signup" + nl]},
    ),
    "endpoint channel": lambda nl: ("POST", EP, {"url": URL, "channels": ["ch" + nl]}),
    "endpoint channel patched": lambda nl: ("PATCH", EP + "/ep1", {"channels": ["ch" + nl]}),
    "endpoint secret": lambda nl: ("POST", EP, {"url": URL, "secret": SECRET + nl}),
    "rotated secret": lambda nl: ("POST", EP + "/ep1/secret/rotate", {"key": SECRET + nl}),
    "header name": lambda nl: ("PUT", EP + "/ep1/headers", {"headers": {"X-Foo" + nl: "v"}}),
    "header value": lambda nl: ("PUT", EP + "/ep1/headers", {"headers": {"X-Foo": "v" + nl}}),
    "header value patched": lambda nl: (
        "PATCH",
        EP + "/ep1/headers",
        {"headers": {"X-Foo": "v" + nl}},
    ),
    "header value on create": lambda nl: (
        "POST",
        EP,
        {"url": URL, "headers": {"X-Foo": "v" + nl}},
    ),
    "event type name": lambda nl: (
        "POST",
        "/api/v1/event-type",
        {"name": "new.type" + nl, "description": "d"},
    ),
    "event type name in path": lambda nl: (
        "PUT",
        "/api/v1/event-type/new.type" + _path(nl),
        {"description": "d"},
    ),
    "event type group": lambda nl: (
        "POST",
        "/api/v1/event-type",
        {"name": "new.type", "description": "d", "groupName": "group" + nl},
    ),
    "message event type": lambda nl: ("POST", MSG, {**MESSAGE, "eventType": "user.signup" + nl}),
    "message event id": lambda nl: ("POST", MSG, {**MESSAGE, "eventId": "evt" + nl}),
    "message channel": lambda nl: ("POST", MSG, {**MESSAGE, "channels": ["ch" + nl]}),
    "message tag": lambda nl: ("POST", MSG, {**MESSAGE, "tags": ["tag" + nl]}),
    "message application uid": lambda nl: (
        "POST",
        "/api/v1/app/new" + _path(nl) + "/msg",
        {**MESSAGE, "application": {"name": "New", "uid": "new" + nl}},
    ),
    "message list channel filter": lambda nl: ("GET", MSG + "?channel=ch" + _path(nl), {}),
    "message list tag filter": lambda nl: ("GET", MSG + "?tag=tag" + _path(nl), {}),
    "message list event type filter": lambda nl: (
        "GET",
        MSG + "?event_types=user.signup" + _path(nl),
        {},
    ),
}


@pytest.mark.parametrize("case", NEWLINE_CASES, ids=str)
def test_value_with_trailing_newline_returns_422_and_stores_nothing(
    client: FlaskClient, auth_headers: Headers, world: None, case: str
) -> None:
    before = snapshot()
    method, path, body = NEWLINE_CASES[case]("\n")
    response = client.open(path, method=method, json=body or None, headers=auth_headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["detail"][0]["loc"][0] in ("body", "path", "query")
    assert snapshot() == before

    method, path, body = NEWLINE_CASES[case]("")  # the same request without the newline
    response = client.open(path, method=method, json=body or None, headers=auth_headers)
    assert 200 <= response.status_code < 300, response.get_json()


def test_openapi_document_keeps_the_patterns(client: FlaskClient) -> None:
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert schemas["ApplicationIn"]["properties"]["uid"]["pattern"] == r"^[a-zA-Z0-9\-_.]+$"
    tags = schemas["MessageIn"]["properties"]["tags"]["items"]
    assert tags["pattern"] == r"^[a-zA-Z0-9\-_./\\#]+$"


# --- message `application`: ApplicationIn's limits ---------------------------------------------


def test_create_message_with_long_application_name_returns_422_and_stores_nothing(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    before = snapshot()
    body = {**MESSAGE, "application": {"name": "n" * 257, "uid": "new"}}
    response = client.post("/api/v1/app/new/msg", json=body, headers=auth_headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["detail"][0]["loc"] == ["body", "application", "name"]
    assert snapshot() == before


def test_create_message_with_application_name_of_256_creates_the_app(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    body = {**MESSAGE, "application": {"name": "n" * 256, "uid": "new"}}
    assert client.post("/api/v1/app/new/msg", json=body, headers=auth_headers).status_code == 202
    app = client.get("/api/v1/app/new", headers=auth_headers).get_json()
    assert app["name"] == "n" * 256


def test_create_message_with_oversized_application_metadata_returns_422(
    client: FlaskClient, auth_headers: Headers, world: None
) -> None:
    before = snapshot()
    application = {"name": "New", "uid": "new", "metadata": {"k": "v" * 5000}}
    response = client.post(
        "/api/v1/app/new/msg", json={**MESSAGE, "application": application}, headers=auth_headers
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["detail"][0]["loc"] == ["body", "application", "metadata"]
    assert snapshot() == before


# --- endpoint URLs with an impossible port -----------------------------------------------------

PORT_REQUESTS = {
    "create": ("POST", EP),
    "update": ("PUT", EP + "/ep1"),
    "patch": ("PATCH", EP + "/ep1"),
}


@pytest.mark.parametrize("port", ["99999", "65536", "0"])
@pytest.mark.parametrize("verb", PORT_REQUESTS)
def test_endpoint_url_with_impossible_port_returns_422(
    client: FlaskClient, auth_headers: Headers, world: None, verb: str, port: str
) -> None:
    before = snapshot()
    method, path = PORT_REQUESTS[verb]
    body = {"url": f"https://example.com:{port}/hook"}
    response = client.open(path, method=method, json=body, headers=auth_headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["detail"][0]["loc"] == ["body", "url"]
    assert snapshot() == before


@pytest.mark.parametrize("verb", PORT_REQUESTS)
def test_endpoint_url_with_highest_port_is_accepted(
    client: FlaskClient, auth_headers: Headers, world: None, verb: str
) -> None:
    method, path = PORT_REQUESTS[verb]
    body = {"url": "https://example.com:65535/hook"}
    response = client.open(path, method=method, json=body, headers=auth_headers)
    assert 200 <= response.status_code < 300, response.get_json()
    assert json.loads(response.get_data())["url"] == "https://example.com:65535/hook"
