"""Bearer-token authentication."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

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
