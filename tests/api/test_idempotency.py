"""Idempotent message creation: `idempotency-key` replays the first 2xx response."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from api.extensions import db
from api.models import ApiToken, Application, Message, Organization
from api.services.tokens import create_token
from tests.api.factories import app_token_headers

Headers = dict[str, str]
BODY = {"eventType": "order.paid", "payload": {"order": 42}}


def post(client: FlaskClient, headers: Headers, key: str, app_id: str = "shop") -> Any:
    """POST BODY with an idempotency key."""
    return client.post(
        f"/api/v1/app/{app_id}/msg", json=BODY, headers={**headers, "idempotency-key": key}
    )


def count_messages() -> int:
    """Messages in the database."""
    return db.session.scalar(select(func.count()).select_from(Message))


def test_create_message_same_key_replays_first_response(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    key = uuid.uuid4().hex
    first, second = post(client, auth_headers, key), post(client, auth_headers, key)
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_messages() == 1


def test_create_message_different_key_creates_new_message(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    first = post(client, auth_headers, uuid.uuid4().hex).get_json()["id"]
    second = post(client, auth_headers, uuid.uuid4().hex).get_json()["id"]
    assert first != second
    assert count_messages() == 2


def test_create_message_error_response_is_not_cached(
    client: FlaskClient, auth_headers: Headers, auth_token: str
) -> None:
    key = uuid.uuid4().hex
    assert post(client, auth_headers, key, app_id="later").status_code == 404
    org_id = db.session.scalar(select(Organization.id).where(Organization.name == "test-org"))
    db.session.add(Application(org_id=org_id, name="Later", uid="later"))
    db.session.commit()
    retried = post(client, auth_headers, key, app_id="later")
    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried.headers


def test_create_message_same_key_other_token_is_not_replayed(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    key = uuid.uuid4().hex
    post(client, auth_headers, key)
    other = client.post("/api/v1/app/shop/msg", json=BODY, headers={"idempotency-key": key})
    assert other.status_code == 401  # the key is scoped to the caller's Authorization


def test_create_message_deleted_token_with_stored_key_returns_401(
    app: Flask,
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "AUTH_CACHE_SECONDS", 0)  # a deletion is seen at once
    monkeypatch.setattr("api.services.tokens._CACHE", {})
    key = uuid.uuid4().hex
    assert post(client, auth_headers, key).status_code == 202
    db.session.execute(delete(ApiToken))
    db.session.commit()
    replay = post(client, auth_headers, key)
    assert replay.status_code == 401
    assert replay.get_json()["code"] == "authentication_failed"
    assert "Idempotent-Replayed" not in replay.headers


def test_create_message_same_key_other_org_runs_its_own_request(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    org, plain = create_token("other-org")
    db.session.add(Application(org_id=org.id, name="Other shop", uid="shop"))
    db.session.commit()
    key = uuid.uuid4().hex
    first = post(client, auth_headers, key)
    other = post(client, {"Authorization": f"Bearer {plain}"}, key)
    assert first.status_code == other.status_code == 202
    assert "Idempotent-Replayed" not in other.headers
    assert other.get_json()["id"] != first.get_json()["id"]
    theirs = db.session.get(Message, other.get_json()["id"])
    assert theirs is not None and theirs.org_id == org.id
    assert post(client, auth_headers, key).get_json() == first.get_json()  # still the first's
    assert count_messages() == 2


def test_create_message_concurrent_duplicates_create_one_message(
    app: Flask,
    live_server: str,
    api_token: str,
) -> None:
    with app.app_context():
        org_id = db.session.scalar(select(Organization.id).where(Organization.name == "e2e"))
        db.session.add(Application(org_id=org_id, name="Shop", uid="shop"))
        db.session.commit()
    headers = {"Authorization": f"Bearer {api_token}", "idempotency-key": uuid.uuid4().hex}
    barrier = threading.Barrier(2)
    results: list[requests.Response] = []

    def send() -> None:
        barrier.wait()
        results.append(
            requests.post(
                f"{live_server}/api/v1/app/shop/msg", json=BODY, headers=headers, timeout=10
            )
        )

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    assert [r.status_code for r in results] == [202, 202]
    assert results[0].json()["id"] == results[1].json()["id"]
    with app.app_context():
        assert count_messages() == 1
        db.session.remove()


def test_a_keyed_request_looks_its_token_up_once(
    client: FlaskClient, application: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idempotency hook and the view share one authentication: an app portal token (never
    cached) costs one lookup per request, not one for the key and one for the view."""
    from api.services import tokens

    headers = app_token_headers(application)
    calls: list[str] = []
    real = tokens.authenticate
    monkeypatch.setattr(tokens, "authenticate", lambda t: calls.append(t) or real(t))
    monkeypatch.setattr("api.auth.authenticate", tokens.authenticate)
    response = client.post(
        f"/api/v1/app/{application.id}/endpoint",
        json={"url": "https://example.com/hook"},
        headers={**headers, "idempotency-key": "k1"},
    )
    assert response.status_code == 201, response.get_json()
    assert len(calls) == 1
