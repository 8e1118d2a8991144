"""Bearer-token authentication."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import delete, select

from api.extensions import db
from api.models import ApiToken
from api.services.tokens import authenticate, hash_token


def test_logout_without_header_returns_401(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/logout")
    assert response.status_code == 401
    assert response.get_json()["code"] == "authentication_failed"


def test_logout_with_bad_token_returns_401(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/logout", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.get_json() == {"code": "authentication_failed", "detail": "Invalid token"}


def test_logout_with_wrong_scheme_returns_401(client: FlaskClient, auth_token: str) -> None:
    response = client.post("/api/v1/auth/logout", headers={"Authorization": f"Basic {auth_token}"})
    assert response.status_code == 401


def test_logout_with_valid_token_returns_204(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    assert client.post("/api/v1/auth/logout", headers=auth_headers).status_code == 204


def test_create_token_stores_only_the_hash(db_session: object, auth_token: str) -> None:
    rows = db.session.scalars(select(ApiToken)).all()
    assert [r.token_hash for r in rows] == [hash_token(auth_token)]
    assert all(auth_token not in r.token_hash for r in rows)
    principal = authenticate(auth_token)
    assert principal is not None and principal.org_id == rows[0].org_id
    assert authenticate(auth_token + "x") is None


def test_authenticate_caches_valid_tokens_for_the_configured_time(
    app: Flask, db_session: object, auth_token: str
) -> None:
    with freeze_time("2026-01-01 00:00:00") as clock:
        assert authenticate(auth_token) is not None
        db.session.execute(delete(ApiToken))  # revoke behind the cache's back
        assert authenticate(auth_token) is not None  # still cached
        clock.tick(app.config["AUTH_CACHE_SECONDS"] + 1)
        assert authenticate(auth_token) is None  # expired from the cache, gone from the DB


def test_authenticate_without_cache_sees_deletion_at_once(
    app: Flask, db_session: object, auth_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "AUTH_CACHE_SECONDS", 0)
    monkeypatch.setattr("api.services.tokens._CACHE", {})
    assert authenticate(auth_token) is not None
    db.session.execute(delete(ApiToken))
    assert authenticate(auth_token) is None
