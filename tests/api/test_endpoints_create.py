"""Endpoints API, create: defaults, all fields, body validation, uid conflicts, access."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.services import endpoints as endpoint_service
from tests.api import endpoints_support
from tests.api.endpoints_support import BASE, SECRET, Headers, post_endpoint, stored

# Shared fixtures, bound here so pytest finds them for this module's tests.
application = endpoints_support.application
other_headers = endpoints_support.other_headers


def test_create_endpoint_returns_201_with_defaults(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    response = post_endpoint(client, auth_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("ep_") and len(body["id"]) == 30
    assert (body["url"], body["description"], body["metadata"]) == (
        "https://example.com/hook",
        "",
        {},
    )
    assert (body["disabled"], body["eventTypes"], body["filterTypes"], body["channels"]) == (
        False,
        None,
        None,
        None,
    )
    assert "secret" not in body and body["createdAt"].endswith("Z")
    secret = stored(body["id"]).secret
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24


def test_create_endpoint_with_all_fields_round_trips(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    response = post_endpoint(
        client,
        auth_headers,
        f"/api/v1/app/{application['id']}/endpoint",
        uid="ep-1",
        description="Main",
        throttleRate=7,
        disabled=True,
        eventTypes=["user.signup"],
        channels=["eu", "eu", "us"],
        metadata={"k": "v"},
        secret=SECRET[6:],
        headers={"X-Api-Key": "s3cret", "X-Team": "a"},
        version=99,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["uid"], body["description"], body["throttleRate"], body["disabled"]) == (
        "ep-1",
        "Main",
        7,
        True,
    )
    assert body["eventTypes"] == body["filterTypes"] == ["user.signup"]
    assert body["channels"] == ["eu", "us"] and body["metadata"] == {"k": "v"}
    row = stored(body["id"])
    assert row.secret == SECRET and row.headers == {"X-Api-Key": "s3cret", "X-Team": "a"}


def test_create_endpoint_accepts_legacy_filter_types(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    response = post_endpoint(client, auth_headers, filterTypes=["order.paid"])
    assert response.get_json()["eventTypes"] == ["order.paid"]


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        (
            {"eventTypes": ["nope", "user.signup"]},
            ["body", "eventTypes"],
            "The following event types don't exist: nope",
        ),
        (
            {"filterTypes": ["old.thing"]},
            ["body", "eventTypes"],
            "The following event types don't exist: old.thing",
        ),
        ({"eventTypes": []}, ["body", "eventTypes"], None),
        (
            {"url": "ftp://example.com"},
            ["body", "url"],
            "Endpoint URL schemes must be http or https",
        ),
        ({"url": "not a url"}, ["body", "url"], "Endpoint URL schemes must be http or https"),
        ({"url": "http://"}, ["body", "url"], None),
        ({"url": "https://exa mple.com/"}, ["body", "url"], None),
        ({"uid": "ep_abc"}, ["body", "uid"], None),
        ({"throttleRate": 0}, ["body", "throttleRate"], None),
        ({"channels": [f"c{i}" for i in range(11)]}, ["body", "channels"], None),
        ({"secret": "whsec_short"}, ["body", "secret"], None),
        ({"secret": "whpk_" + SECRET[6:]}, ["body", "secret"], None),
        ({"description": "a\x00b"}, ["body", "description"], None),
        ({"url": "https://example.com/\ud800"}, ["body", "url"], None),
        ({"url": "https://example.com/" + "a" * 65536}, ["body", "url"], None),
        ({"headers": {"Content-Type": "x"}}, ["body", "headers"], None),
    ],
)
def test_create_endpoint_invalid_body_returns_422(
    client: FlaskClient,
    auth_headers: Headers,
    application: dict[str, Any],
    body: dict[str, Any],
    loc: list[str],
    msg: str | None,
) -> None:
    response = post_endpoint(client, auth_headers, **body)
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail[0]["loc"] == loc and detail[0]["type"] == "value_error"
    if msg:
        assert detail[0]["msg"] == msg


def test_create_endpoint_duplicate_uid_returns_409_only_within_app(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    assert post_endpoint(client, auth_headers, uid="main").status_code == 201
    response = post_endpoint(client, auth_headers, uid="main")
    assert response.status_code == 409 and response.get_json()["code"] == "conflict"
    client.post("/api/v1/app", json={"name": "Two", "uid": "two"}, headers=auth_headers)
    other_app = post_endpoint(client, auth_headers, "/api/v1/app/two/endpoint", uid="main")
    assert other_app.status_code == 201


def test_create_endpoint_unique_violation_returns_409_not_500(
    client: FlaskClient,
    auth_headers: Headers,
    application: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    monkeypatch.setattr(endpoint_service, "_check", lambda *args: None)  # lose the race
    response = post_endpoint(client, auth_headers, uid="main")
    assert response.status_code == 409
    assert len(client.get(BASE, headers=auth_headers).get_json()["data"]) == 1


def test_create_endpoint_unknown_or_foreign_app_returns_404(
    client: FlaskClient,
    auth_headers: Headers,
    other_headers: Headers,
    application: dict[str, Any],
) -> None:
    assert post_endpoint(client, auth_headers, "/api/v1/app/nope/endpoint").status_code == 404
    assert post_endpoint(client, other_headers).status_code == 404


def test_create_endpoint_without_token_returns_401(client: FlaskClient) -> None:
    assert client.post(BASE, json={"url": "https://example.com"}).status_code == 401
