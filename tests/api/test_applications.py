"""Applications API: create / get-or-create, list, get, upsert, patch, delete."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import db
from api.models import Endpoint
from api.services import applications as app_service
from api.services.tokens import create_token

Headers = dict[str, str]


@pytest.fixture
def other_headers(db_session: object) -> Headers:
    """Authorization headers for a second org."""
    _, plain = create_token("other-org")
    return {"Authorization": f"Bearer {plain}"}


def post_app(client: FlaskClient, headers: Headers, query: str = "", **body: Any) -> Any:
    """POST /app with a default name."""
    return client.post(f"/api/v1/app{query}", json={"name": "Acme", **body}, headers=headers)


def test_create_application_returns_201_with_defaults(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = post_app(client, auth_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("app_") and len(body["id"]) == 31
    assert body["name"] == "Acme" and body["metadata"] == {}
    assert body["uid"] is None and body["throttleRate"] is None
    assert body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")


def test_create_application_with_all_fields_round_trips(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = post_app(
        client, auth_headers, uid="acme", throttleRate=10, metadata={"tier": "gold"}, extra=1
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["uid"], body["throttleRate"], body["metadata"]) == ("acme", 10, {"tier": "gold"})


def test_create_application_legacy_rate_limit_sets_throttle_rate(
    client: FlaskClient, auth_headers: Headers
) -> None:
    assert post_app(client, auth_headers, rateLimit=5).get_json()["throttleRate"] == 5


def test_create_application_duplicate_uid_returns_409(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_app(client, auth_headers, uid="acme")
    response = post_app(client, auth_headers, uid="acme")
    assert response.status_code == 409
    assert response.get_json() == {
        "code": "conflict",
        "detail": "An application with that id or uid already exists",
    }


def test_create_application_unique_violation_returns_409_not_500(
    client: FlaskClient, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_app(client, auth_headers, uid="acme")
    monkeypatch.setattr(app_service, "_find_by_uid", lambda org_id, uid: None)  # lose the race
    response = post_app(client, auth_headers, uid="acme")
    assert response.status_code == 409
    assert client.get("/api/v1/app", headers=auth_headers).get_json()["data"][0]["uid"] == "acme"


def test_create_application_get_if_exists_returns_200_existing(
    client: FlaskClient, auth_headers: Headers
) -> None:
    first = post_app(client, auth_headers, uid="acme").get_json()
    response = post_app(client, auth_headers, "?get_if_exists=true", uid="acme", name="Other")
    assert response.status_code == 200
    assert response.get_json() == first


def test_create_application_get_if_exists_creates_when_missing(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = post_app(client, auth_headers, "?get_if_exists=true", uid="fresh")
    assert response.status_code == 201
    without_uid = post_app(client, auth_headers, "?get_if_exists=true")
    assert without_uid.status_code == 201


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "name"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "x" * 257}, ["body", "name"]),
        ({"name": "bad\x00name"}, ["body", "name"]),
        ({"name": "lone \ud800 surrogate"}, ["body", "name"]),
        ({"name": "a", "uid": "app_123"}, ["body", "uid"]),
        ({"name": "a", "uid": "has space"}, ["body", "uid"]),
        ({"name": "a", "throttleRate": 0}, ["body", "throttleRate"]),
        ({"name": "a", "throttleRate": True}, ["body", "throttleRate"]),
        ({"name": "a", "metadata": {"k": 1}}, ["body", "metadata", "k", "value"]),
        ({"name": "a", "metadata": {"k": "v" * 5000}}, ["body", "metadata"]),
    ],
)
def test_create_application_invalid_body_returns_422(
    client: FlaskClient, auth_headers: Headers, body: dict[str, Any], loc: list[str]
) -> None:
    response = client.post("/api/v1/app", json=body, headers=auth_headers)
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert loc in [item["loc"] for item in detail]
    assert all(item["type"] == "value_error" and item["msg"] for item in detail)


def test_create_application_non_object_body_returns_422(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = client.post("/api/v1/app", json=[1, 2], headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body"]


def test_create_application_without_token_returns_401(client: FlaskClient) -> None:
    response = client.post("/api/v1/app", json={"name": "x"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "authentication_failed"


def test_create_application_bad_token_checked_before_body_returns_401(
    client: FlaskClient,
) -> None:
    response = client.post("/api/v1/app", json={}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_list_applications_paginates_with_iterator_and_prev_iterator(
    client: FlaskClient, auth_headers: Headers
) -> None:
    ids = sorted(post_app(client, auth_headers, name=f"a{i}").get_json()["id"] for i in range(5))
    first = client.get("/api/v1/app?limit=2", headers=auth_headers).get_json()
    assert [a["id"] for a in first["data"]] == ids[:2] and first["done"] is False
    second = client.get(
        f"/api/v1/app?limit=2&iterator={first['iterator']}", headers=auth_headers
    ).get_json()
    assert [a["id"] for a in second["data"]] == ids[2:4] and second["done"] is False
    third = client.get(
        f"/api/v1/app?limit=2&iterator={second['iterator']}", headers=auth_headers
    ).get_json()
    assert [a["id"] for a in third["data"]] == ids[4:] and third["done"] is True
    back = client.get(
        f"/api/v1/app?limit=2&iterator={second['prevIterator']}", headers=auth_headers
    ).get_json()
    assert [a["id"] for a in back["data"]] == ids[:2]


def test_list_applications_descending_order(client: FlaskClient, auth_headers: Headers) -> None:
    ids = sorted(post_app(client, auth_headers, name=f"a{i}").get_json()["id"] for i in range(3))
    body = client.get("/api/v1/app?order=descending", headers=auth_headers).get_json()
    assert [a["id"] for a in body["data"]] == ids[::-1]


def test_list_applications_empty_has_null_iterator(
    client: FlaskClient, auth_headers: Headers
) -> None:
    body = client.get("/api/v1/app?exclude_apps_with_no_endpoints=true", headers=auth_headers)
    assert body.get_json() == {"data": [], "iterator": None, "prevIterator": None, "done": True}


def test_list_applications_shows_only_own_org(
    client: FlaskClient, auth_headers: Headers, other_headers: Headers
) -> None:
    post_app(client, other_headers, uid="theirs")
    assert client.get("/api/v1/app", headers=auth_headers).get_json()["data"] == []


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=251", "limit=abc", "order=sideways", "iterator=a%00b"]
)
def test_list_applications_bad_query_returns_422(
    client: FlaskClient, auth_headers: Headers, query: str
) -> None:
    response = client.get(f"/api/v1/app?{query}", headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][0] == "query"


def test_get_application_by_id_and_by_uid(client: FlaskClient, auth_headers: Headers) -> None:
    created = post_app(client, auth_headers, uid="acme").get_json()
    assert client.get(f"/api/v1/app/{created['id']}", headers=auth_headers).get_json() == created
    assert client.get("/api/v1/app/acme", headers=auth_headers).get_json() == created


@pytest.mark.parametrize("app_id", ["missing", "app_2gXdoesnotexist000000000000", "a%00b"])
def test_get_application_unknown_returns_404(
    client: FlaskClient, auth_headers: Headers, app_id: str
) -> None:
    response = client.get(f"/api/v1/app/{app_id}", headers=auth_headers)
    assert response.status_code == 404
    assert response.get_json() == {"code": "not_found", "detail": "Entity not found"}


def test_get_application_of_other_org_returns_404(
    client: FlaskClient, auth_headers: Headers, other_headers: Headers
) -> None:
    theirs = post_app(client, other_headers, uid="theirs").get_json()
    assert client.get(f"/api/v1/app/{theirs['id']}", headers=auth_headers).status_code == 404
    assert client.get("/api/v1/app/theirs", headers=auth_headers).status_code == 404


def test_upsert_application_missing_uid_path_creates_201(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = client.put("/api/v1/app/acme", json={"name": "Acme"}, headers=auth_headers)
    assert response.status_code == 201
    assert response.get_json()["uid"] == "acme"
    again = client.put("/api/v1/app/acme", json={"name": "Acme 2"}, headers=auth_headers)
    assert again.status_code == 200
    assert again.get_json()["id"] == response.get_json()["id"]
    assert again.get_json()["name"] == "Acme 2" and again.get_json()["uid"] == "acme"


def test_upsert_application_existing_replaces_fields_200(
    client: FlaskClient, auth_headers: Headers
) -> None:
    app = post_app(client, auth_headers, uid="acme", throttleRate=3, metadata={"a": "b"})
    app_id = app.get_json()["id"]
    response = client.put(f"/api/v1/app/{app_id}", json={"name": "New"}, headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["name"], body["metadata"]) == (app_id, "New", {})
    assert body["uid"] is None and body["throttleRate"] is None


def test_upsert_application_unknown_app_id_creates_new_id(
    client: FlaskClient, auth_headers: Headers
) -> None:
    path_id = "app_2gXdoesnotexist000000000000"
    response = client.put(f"/api/v1/app/{path_id}", json={"name": "A"}, headers=auth_headers)
    assert response.status_code == 201
    assert response.get_json()["id"] != path_id and response.get_json()["uid"] is None


def test_upsert_application_invalid_path_uid_returns_422(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = client.put("/api/v1/app/bad%20uid", json={"name": "A"}, headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["path", "app_id"]


def test_upsert_application_taken_uid_returns_409(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_app(client, auth_headers, uid="taken")
    response = client.put(
        "/api/v1/app/mine", json={"name": "A", "uid": "taken"}, headers=auth_headers
    )
    assert response.status_code == 409


def test_patch_application_absent_keys_stay_unchanged(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_app(client, auth_headers, uid="acme", throttleRate=3, metadata={"a": "b"})
    response = client.patch("/api/v1/app/acme", json={"name": "Renamed"}, headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["uid"], body["throttleRate"]) == ("Renamed", "acme", 3)
    assert body["metadata"] == {"a": "b"}


def test_patch_application_null_clears_uid_and_throttle_rate(
    client: FlaskClient, auth_headers: Headers
) -> None:
    app_id = post_app(client, auth_headers, uid="acme", throttleRate=3).get_json()["id"]
    response = client.patch(
        "/api/v1/app/acme",
        json={"uid": None, "throttleRate": None, "metadata": None},
        headers=auth_headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["uid"], body["throttleRate"], body["metadata"]) == (
        app_id,
        None,
        None,
        {},
    )
    assert client.get("/api/v1/app/acme", headers=auth_headers).status_code == 404


def test_patch_application_taken_uid_returns_409(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_app(client, auth_headers, uid="one")
    post_app(client, auth_headers, uid="two")
    response = client.patch("/api/v1/app/one", json={"uid": "two"}, headers=auth_headers)
    assert response.status_code == 409
    assert (
        client.patch("/api/v1/app/one", json={"uid": "one"}, headers=auth_headers).status_code
        == 200
    )


def test_patch_application_invalid_returns_422_and_unknown_404(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_app(client, auth_headers, uid="acme")
    bad = client.patch("/api/v1/app/acme", json={"name": ""}, headers=auth_headers)
    assert bad.status_code == 422 and bad.get_json()["detail"][0]["loc"] == ["body", "name"]
    missing = client.patch("/api/v1/app/nope", json={"name": "x"}, headers=auth_headers)
    assert missing.status_code == 404


def test_delete_application_returns_204_and_removes_endpoints(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_app(client, auth_headers, uid="acme")
    created = client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h"}, headers=auth_headers
    )
    assert created.status_code == 201
    response = client.delete("/api/v1/app/acme", headers=auth_headers)
    assert response.status_code == 204 and response.data == b""
    assert client.get("/api/v1/app/acme", headers=auth_headers).status_code == 404
    assert db.session.scalars(select(Endpoint)).all() == []
    assert post_app(client, auth_headers, uid="acme").status_code == 201  # the uid is free again


def test_delete_application_unknown_or_other_org_returns_404(
    client: FlaskClient, auth_headers: Headers, other_headers: Headers
) -> None:
    post_app(client, other_headers, uid="theirs")
    assert client.delete("/api/v1/app/theirs", headers=auth_headers).status_code == 404
    assert client.get("/api/v1/app/theirs", headers=other_headers).status_code == 200
