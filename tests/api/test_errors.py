"""Every error is JSON in Svix's shape, never HTML."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.errors import flatten_messages


def test_get_unknown_route_returns_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json() == {"code": "not_found", "detail": "Entity not found"}


def test_wrong_method_returns_json_405(client: FlaskClient) -> None:
    response = client.delete("/api/v1/health/ping")
    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_post_too_large_body_returns_json_413(app: Flask, client: FlaskClient) -> None:
    body = b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}"
    response = client.post("/api/v1/auth/logout", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json() == {
        "code": "payload_too_large",
        "detail": "Request payload is too large.",
    }


def test_unhandled_exception_returns_json_500_with_request_id(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode() -> dict[str, str]:
        raise RuntimeError("boom")

    monkeypatch.setattr("api.blueprints.health.check_dependencies", explode)
    caplog.set_level("ERROR", logger="api.errors")
    response = client.get("/api/v1/health", headers={"X-Request-Id": "req-123"})
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == "server_error"
    assert "req-123" in body["detail"]
    assert response.headers["X-Request-Id"] == "req-123"


def test_flatten_messages_builds_svix_locations() -> None:
    items = flatten_messages({"url": ["bad"], "nested": {"x": ["worse"]}}, ["body"])
    assert {"loc": ["body", "url"], "msg": "bad", "type": "value_error"} in items
    assert {"loc": ["body", "nested", "x"], "msg": "worse", "type": "value_error"} in items


def test_post_malformed_json_returns_422_jsondecode(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/app", data=b'{"name": ', content_type="application/json", headers=auth_headers
    )
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["type"] == "value_error.jsondecode"


def test_post_deeply_nested_json_returns_422_not_500(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    response = client.post(
        "/api/v1/app", data=body, content_type="application/json", headers=auth_headers
    )
    assert response.status_code == 422
    assert response.is_json


def test_other_value_error_still_returns_json_500(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode() -> dict[str, str]:
        raise ValueError("not a JSON number")  # only int()'s digit limit is a 422

    monkeypatch.setattr("api.blueprints.health.check_dependencies", explode)
    response = client.get("/api/v1/health")
    assert response.status_code == 500
    assert response.get_json()["code"] == "server_error"
