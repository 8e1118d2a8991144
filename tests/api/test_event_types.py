"""Event types API: create, list, get, upsert, patch, archive / expunge, existence checks."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from api.errors import Unprocessable
from api.extensions import db
from api.models import EventType, Organization
from api.services import event_types as event_type_service
from api.services.event_types import check_event_types, missing_event_types
from api.services.tokens import create_token

Headers = dict[str, str]
SCHEMA = {"1": {"type": "object", "properties": {"id": {"type": "integer"}}}}


@pytest.fixture
def other_headers(db_session: object) -> Headers:
    """Authorization headers for a second org."""
    _, plain = create_token("other-org")
    return {"Authorization": f"Bearer {plain}"}


def post_type(client: FlaskClient, headers: Headers, name: str = "user.signup", **body: Any) -> Any:
    """POST /event-type with a default description."""
    return client.post(
        "/api/v1/event-type",
        json={"name": name, "description": "A user signed up", **body},
        headers=headers,
    )


def test_create_event_type_returns_201(client: FlaskClient, auth_headers: Headers) -> None:
    response = post_type(
        client,
        auth_headers,
        schemas=SCHEMA,
        groupName="users",
        featureFlags=["beta"],
        unknown="ignored",
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "user.signup" and body["description"] == "A user signed up"
    assert (body["archived"], body["deprecated"]) == (False, False)
    assert body["schemas"] == SCHEMA and body["groupName"] == "users"
    assert body["featureFlag"] == "beta" and body["featureFlags"] == ["beta"]
    assert body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")


def test_create_event_type_existing_returns_409(client: FlaskClient, auth_headers: Headers) -> None:
    post_type(client, auth_headers)
    response = post_type(client, auth_headers)
    assert response.status_code == 409
    assert response.get_json() == {
        "code": "event_type_exists",
        "detail": "An event_type with this name already exists",
    }


def test_create_event_type_archived_unarchives_and_overwrites(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_type(client, auth_headers, schemas=SCHEMA, deprecated=True)
    assert client.delete("/api/v1/event-type/user.signup", headers=auth_headers).status_code == 204
    response = post_type(client, auth_headers, description="Again")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["archived"], body["deprecated"], body["description"]) == (False, False, "Again")
    assert body["schemas"] is None


def test_create_event_type_unique_violation_returns_409_not_500(
    client: FlaskClient, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_type(client, auth_headers)
    monkeypatch.setattr(event_type_service, "_find", lambda org_id, name: None)  # lose the race
    response = post_type(client, auth_headers)
    assert response.status_code == 409 and response.get_json()["code"] == "event_type_exists"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"description": "x"}, ["body", "name"]),
        ({"name": "a b", "description": "x"}, ["body", "name"]),
        ({"name": "x" * 257, "description": "x"}, ["body", "name"]),
        ({"name": "a"}, ["body", "description"]),
        ({"name": "a", "description": "x", "schemas": {"1": {"type": 5}}}, ["body", "schemas"]),
        ({"name": "a", "description": "x", "schemas": {"1": "nope"}}, ["body", "schemas"]),
        (
            {"name": "a", "description": "x", "schemas": {"1": {"pattern": "("}}},
            ["body", "schemas"],
        ),
        (
            {"name": "a", "description": "x", "schemas": {"1": {"title": "a\x00"}}},
            ["body", "schemas"],
        ),
        ({"name": "a", "description": "x", "featureFlags": ["a", "b"]}, ["body", "featureFlags"]),
    ],
)
def test_create_event_type_invalid_body_returns_422(
    client: FlaskClient, auth_headers: Headers, body: dict[str, Any], loc: list[str]
) -> None:
    response = client.post("/api/v1/event-type", json=body, headers=auth_headers)
    assert response.status_code == 422
    assert loc in [item["loc"] for item in response.get_json()["detail"]]


def test_create_event_type_without_token_returns_401(client: FlaskClient) -> None:
    assert client.post("/api/v1/event-type", json={}).status_code == 401


def test_list_event_types_by_name_with_pages(client: FlaskClient, auth_headers: Headers) -> None:
    for name in ("c.three", "a.one", "b.two"):
        post_type(client, auth_headers, name)
    first = client.get("/api/v1/event-type?limit=2", headers=auth_headers).get_json()
    assert [t["name"] for t in first["data"]] == ["a.one", "b.two"]
    assert (first["iterator"], first["done"]) == ("b.two", False)
    second = client.get("/api/v1/event-type?limit=2&iterator=b.two", headers=auth_headers)
    assert [t["name"] for t in second.get_json()["data"]] == ["c.three"]
    assert second.get_json()["done"] is True
    back = client.get(
        f"/api/v1/event-type?limit=2&iterator={second.get_json()['prevIterator']}",
        headers=auth_headers,
    ).get_json()
    assert [t["name"] for t in back["data"]] == ["a.one", "b.two"]
    desc = client.get("/api/v1/event-type?order=descending", headers=auth_headers).get_json()
    assert [t["name"] for t in desc["data"]] == ["c.three", "b.two", "a.one"]


def test_list_event_types_hides_archived_unless_asked(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_type(client, auth_headers, "live")
    post_type(client, auth_headers, "old")
    client.delete("/api/v1/event-type/old", headers=auth_headers)
    default = client.get("/api/v1/event-type", headers=auth_headers).get_json()
    assert [t["name"] for t in default["data"]] == ["live"]
    every = client.get("/api/v1/event-type?include_archived=true", headers=auth_headers)
    assert [(t["name"], t["archived"]) for t in every.get_json()["data"]] == [
        ("live", False),
        ("old", True),
    ]


def test_list_event_types_with_content_false_omits_schemas(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_type(client, auth_headers, schemas=SCHEMA)
    full = client.get("/api/v1/event-type", headers=auth_headers).get_json()
    assert full["data"][0]["schemas"] == SCHEMA
    bare = client.get("/api/v1/event-type?with_content=false", headers=auth_headers).get_json()
    assert "schemas" not in bare["data"][0] and bare["data"][0]["name"] == "user.signup"
    assert set(bare) == {"data", "iterator", "prevIterator", "done"}


def test_list_event_types_only_own_org(
    client: FlaskClient, auth_headers: Headers, other_headers: Headers
) -> None:
    post_type(client, other_headers, "theirs")
    assert client.get("/api/v1/event-type", headers=auth_headers).get_json()["data"] == []


def test_get_event_type_returns_200_and_archived_too(
    client: FlaskClient, auth_headers: Headers
) -> None:
    created = post_type(client, auth_headers, schemas=SCHEMA).get_json()
    assert client.get("/api/v1/event-type/user.signup", headers=auth_headers).get_json() == created
    client.delete("/api/v1/event-type/user.signup", headers=auth_headers)
    archived = client.get("/api/v1/event-type/user.signup", headers=auth_headers).get_json()
    assert archived["archived"] is True


@pytest.mark.parametrize("name", ["missing", "bad%20name", "a%00b"])
def test_get_event_type_unknown_returns_404(
    client: FlaskClient, auth_headers: Headers, name: str
) -> None:
    response = client.get(f"/api/v1/event-type/{name}", headers=auth_headers)
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


def test_get_event_type_of_other_org_returns_404(
    client: FlaskClient, auth_headers: Headers, other_headers: Headers
) -> None:
    post_type(client, other_headers, "theirs")
    assert client.get("/api/v1/event-type/theirs", headers=auth_headers).status_code == 404


def test_upsert_event_type_creates_201_then_replaces_200(
    client: FlaskClient, auth_headers: Headers
) -> None:
    url = "/api/v1/event-type/order.paid"
    created = client.put(
        url,
        json={"description": "Paid", "schemas": SCHEMA, "deprecated": True},
        headers=auth_headers,
    )
    assert created.status_code == 201
    assert created.get_json()["name"] == "order.paid" and created.get_json()["deprecated"] is True
    replaced = client.put(url, json={"description": "Paid!"}, headers=auth_headers)
    assert replaced.status_code == 200
    body = replaced.get_json()
    assert (body["description"], body["deprecated"], body["schemas"]) == ("Paid!", False, None)


def test_upsert_event_type_invalid_returns_422(client: FlaskClient, auth_headers: Headers) -> None:
    no_description = client.put("/api/v1/event-type/a", json={}, headers=auth_headers)
    assert no_description.get_json()["detail"][0]["loc"] == ["body", "description"]
    bad_name = client.put(
        "/api/v1/event-type/a%20b", json={"description": "x"}, headers=auth_headers
    )
    assert bad_name.status_code == 422
    assert bad_name.get_json()["detail"][0]["loc"] == ["path", "event_type_name"]


def test_patch_event_type_changes_only_given_fields(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_type(client, auth_headers, schemas=SCHEMA, groupName="users")
    url = "/api/v1/event-type/user.signup"
    response = client.patch(url, json={"deprecated": True}, headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["deprecated"], body["schemas"], body["groupName"]) == (True, SCHEMA, "users")
    cleared = client.patch(url, json={"schemas": None, "groupName": None}, headers=auth_headers)
    assert cleared.get_json()["schemas"] is None and cleared.get_json()["groupName"] is None
    bad = client.patch(url, json={"schemas": {"1": {"type": "nope"}}}, headers=auth_headers)
    assert bad.status_code == 422 and bad.get_json()["detail"][0]["loc"] == ["body", "schemas"]
    missing = client.patch("/api/v1/event-type/nope", json={}, headers=auth_headers)
    assert missing.status_code == 404


def test_delete_event_type_archives_by_default(client: FlaskClient, auth_headers: Headers) -> None:
    post_type(client, auth_headers)
    response = client.delete("/api/v1/event-type/user.signup", headers=auth_headers)
    assert response.status_code == 204 and response.data == b""
    row = db.session.scalar(select(EventType).where(EventType.name == "user.signup"))
    assert row is not None and row.archived is True


def test_delete_event_type_with_expunge_removes_row(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_type(client, auth_headers)
    response = client.delete("/api/v1/event-type/user.signup?expunge=true", headers=auth_headers)
    assert response.status_code == 204
    assert db.session.scalars(select(EventType)).all() == []
    assert client.delete("/api/v1/event-type/user.signup", headers=auth_headers).status_code == 404


def test_check_event_types_names_missing_and_archived(
    client: FlaskClient, auth_headers: Headers
) -> None:
    post_type(client, auth_headers, "live")
    post_type(client, auth_headers, "old")
    client.delete("/api/v1/event-type/old", headers=auth_headers)
    org_id = db.session.scalar(select(Organization.id).where(Organization.name == "test-org"))
    assert missing_event_types(org_id, ["live", "old", "nope", "bad name"]) == [
        "old",
        "nope",
        "bad name",
    ]
    check_event_types(org_id, ["live"])
    with pytest.raises(Unprocessable) as excinfo:
        check_event_types(org_id, ["live", "nope"])
    assert excinfo.value.items == [
        {
            "loc": ["body", "eventTypes"],
            "msg": "The following event types don't exist: nope",
            "type": "value_error",
        }
    ]
