"""POST /api/v1/auth/app-portal-access/{app_id} and GET /api/v1/auth/portal-session."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from api.config import ConfigError, load_config
from api.extensions import db
from api.models import Application, AppPortalToken
from api.services.tokens import hash_token
from tests.api.factories import app_token_headers

Headers = dict[str, str]
ACCESS = "/api/v1/auth/app-portal-access/"
SESSION = "/api/v1/auth/portal-session"
ALL_SUPPORTED = [
    "ViewBase",
    "ViewEndpointSecret",
    "ManageEndpointSecret",
    "CreateAttempts",
    "ManageEndpoint",
]


def grant(client: FlaskClient, headers: Headers, app_id: str, **body: Any) -> Any:
    return client.post(ACCESS + app_id, json=body, headers=headers)


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def session_of(client: FlaskClient, token: str) -> Any:
    return client.get(SESSION, headers=bearer(token))


def test_app_portal_access_returns_url_and_appsk_token(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = grant(client, auth_headers, application.id)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"url", "token"}
    assert body["token"].startswith("appsk_")
    assert body["url"] == f"http://localhost/portal/#key={body['token']}"


def test_app_portal_access_stores_only_the_hash(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    token = grant(client, auth_headers, "shop").get_json()["token"]
    rows = db.session.scalars(select(AppPortalToken)).all()
    assert [(r.app_id, r.token_hash) for r in rows] == [(application.id, hash_token(token))]


def test_app_portal_access_url_uses_public_url_setting(
    app: Flask, client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    app.config["PUBLIC_URL"] = "https://hooks.example.com/herald"
    try:
        body = grant(client, auth_headers, "shop").get_json()
    finally:
        app.config["PUBLIC_URL"] = None
    assert body["url"] == f"https://hooks.example.com/herald/portal/#key={body['token']}"


def test_app_portal_access_url_follows_the_request_host(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = client.post(
        ACCESS + "shop", json={}, headers=auth_headers, base_url="https://herald.test:8443"
    )
    token = response.get_json()["token"]
    assert response.get_json()["url"] == f"https://herald.test:8443/portal/#key={token}"


def test_public_url_setting_is_validated_and_normalised() -> None:
    env = {"HERALD_ENV": "testing", "HERALD_PUBLIC_URL": "https://hooks.example.com/"}
    assert load_config(environ=env)["PUBLIC_URL"] == "https://hooks.example.com"
    assert load_config(environ={"HERALD_ENV": "testing"})["PUBLIC_URL"] is None
    with pytest.raises(ConfigError, match="HERALD_PUBLIC_URL"):
        load_config(environ={**env, "HERALD_PUBLIC_URL": "hooks.example.com"})


def test_app_portal_access_needs_a_token(client: FlaskClient, application: Application) -> None:
    response = client.post(ACCESS + "shop", json={})
    assert response.status_code == 401


def test_app_portal_access_unknown_app_without_application_is_404(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = grant(client, auth_headers, "nobody")
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_app_portal_access_creates_missing_app_with_path_uid(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    response = grant(client, auth_headers, "acme", application={"name": "Acme Inc"})
    assert response.status_code == 200
    app = db.session.scalar(select(Application).where(Application.uid == "acme"))
    assert app is not None and app.name == "Acme Inc" and app.org_id == org_id
    session = session_of(client, response.get_json()["token"]).get_json()
    assert (session["appId"], session["appUid"], session["appName"]) == (app.id, "acme", "Acme Inc")


def test_app_portal_access_ignores_application_of_existing_app(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = grant(client, auth_headers, "shop", application={"name": "Renamed"})
    assert response.status_code == 200
    db.session.refresh(application)
    assert application.name == "Shop"
    assert db.session.scalar(select(Application).where(Application.name == "Renamed")) is None


def test_app_portal_access_refuses_application_uid_other_than_path(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = grant(client, auth_headers, "acme", application={"name": "A", "uid": "other"})
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "application", "uid"]


def test_app_portal_access_of_another_orgs_app_is_404(
    client: FlaskClient, auth_headers: Headers, db_session: object
) -> None:
    from api.services.tokens import create_token

    org, _ = create_token("other-org")
    other = Application(org_id=org.id, name="Theirs", uid="theirs")
    db.session.add(other)
    db.session.commit()
    assert grant(client, auth_headers, other.id).status_code == 404


def test_default_capabilities_are_every_supported_one(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    token = grant(client, auth_headers, "shop").get_json()["token"]
    assert session_of(client, token).get_json()["capabilities"] == ALL_SUPPORTED


def test_capabilities_are_stored_as_given(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    body = grant(client, auth_headers, "shop", capabilities=["ViewBase", "CreateAttempts"])
    session = session_of(client, body.get_json()["token"]).get_json()
    assert session["capabilities"] == ["ViewBase", "CreateAttempts"]


def test_manage_endpoint_implies_the_secret_capabilities(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    body = grant(client, auth_headers, "shop", capabilities=["ViewBase", "ManageEndpoint"])
    session = session_of(client, body.get_json()["token"]).get_json()
    assert session["capabilities"] == [
        "ViewBase",
        "ViewEndpointSecret",
        "ManageEndpointSecret",
        "ManageEndpoint",
    ]


def test_read_only_gives_only_view_base(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    token = grant(client, auth_headers, "shop", readOnly=True).get_json()["token"]
    assert session_of(client, token).get_json()["capabilities"] == ["ViewBase"]
    token = grant(client, auth_headers, "shop", readOnly=False).get_json()["token"]
    assert session_of(client, token).get_json()["capabilities"] == ALL_SUPPORTED


def test_read_only_with_capabilities_is_422(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = grant(client, auth_headers, "shop", readOnly=True, capabilities=["ViewBase"])
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "readOnly"]


def test_manage_transformations_is_422_not_supported(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = grant(
        client, auth_headers, "shop", capabilities=["ViewBase", "ManageTransformations"]
    )
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail[0]["loc"] == ["body", "capabilities"]
    assert "ManageTransformations" in detail[0]["msg"] and "Not supported" in detail[0]["msg"]
    assert db.session.scalars(select(AppPortalToken)).all() == []


@pytest.mark.parametrize(
    "capabilities", [["ViewEndpointSecret"], [], ["ViewBase", "Everything"], "ViewBase"]
)
def test_bad_capabilities_are_422(
    client: FlaskClient, auth_headers: Headers, application: Application, capabilities: Any
) -> None:
    response = grant(client, auth_headers, "shop", capabilities=capabilities)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][:2] == ["body", "capabilities"]


@pytest.mark.parametrize("expiry", [0, 3599, 604801, -1, "soon", 10**30])
def test_bad_expiry_is_422(
    client: FlaskClient, auth_headers: Headers, application: Application, expiry: Any
) -> None:
    response = grant(client, auth_headers, "shop", expiry=expiry)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "expiry"]


@pytest.mark.parametrize(("expiry", "seconds"), [(None, 604800), (3600, 3600), (604800, 604800)])
def test_expiry_sets_expires_at(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    expiry: int | None,
    seconds: int,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        body = {} if expiry is None else {"expiry": expiry}
        token = grant(client, auth_headers, "shop", **body).get_json()["token"]
        session = session_of(client, token).get_json()
    expected = {604800: "2026-03-08T12:00:00Z", 3600: "2026-03-01T13:00:00Z"}[seconds]
    assert session["expiresAt"] == expected


def test_feature_flags_and_session_id_are_stored(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    token = grant(
        client, auth_headers, "shop", featureFlags=["beta", "beta", "alpha"], sessionId="user_1"
    ).get_json()["token"]
    assert session_of(client, token).get_json()["featureFlags"] == ["alpha", "beta"]
    row = db.session.scalar(select(AppPortalToken))
    assert row is not None and row.session_id == "user_1"


@pytest.mark.parametrize(
    "body",
    [
        {"featureFlags": ["no spaces"]},
        {"featureFlags": [f"f{i}" for i in range(26)]},
        {"sessionId": "a" * 65},
        {"sessionId": "bad/char"},
        {"application": {"name": ""}},
    ],
)
def test_bad_fields_are_422(
    client: FlaskClient, auth_headers: Headers, body: dict[str, Any]
) -> None:
    response = grant(client, auth_headers, "acme", **body)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][1] in body


def test_app_token_cannot_grant_portal_access(
    client: FlaskClient, application: Application
) -> None:
    response = grant(client, app_token_headers(application), "shop")
    assert response.status_code == 403
    assert response.get_json()["code"] == "insufficient_access"


def test_portal_session_describes_the_token(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        token = grant(
            client,
            auth_headers,
            application.id,
            capabilities=["ViewBase"],
            featureFlags=["beta"],
            expiry=7200,
        ).get_json()["token"]
        response = session_of(client, token)
    assert response.status_code == 200
    assert response.get_json() == {
        "appId": application.id,
        "appUid": "shop",
        "appName": "Shop",
        "capabilities": ["ViewBase"],
        "featureFlags": ["beta"],
        "expiresAt": "2026-03-01T14:00:00Z",
    }


def test_portal_session_with_org_token_is_403(client: FlaskClient, auth_headers: Headers) -> None:
    response = client.get(SESSION, headers=auth_headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "insufficient_access"


def test_portal_session_without_token_is_401(client: FlaskClient) -> None:
    assert client.get(SESSION).status_code == 401


def test_app_portal_access_is_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/auth/app-portal-access/{app_id}" in paths
    assert "/api/v1/auth/portal-session" in paths
    assert "/api/v1/auth/app/{app_id}/expire-all" in paths
