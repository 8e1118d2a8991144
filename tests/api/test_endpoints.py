"""Endpoints API: list, get, upsert, patch and delete (create: test_endpoints_create.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient

from api.extensions import db
from tests.api import endpoints_support
from tests.api.endpoints_support import BASE, Headers, post_endpoint, stored

# Shared fixtures, bound here so pytest finds them for this module's tests.
application = endpoints_support.application
other_headers = endpoints_support.other_headers


def test_list_endpoints_newest_first_with_pages(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    ids = sorted(post_endpoint(client, auth_headers).get_json()["id"] for _ in range(5))
    newest = ids[::-1]
    first = client.get(f"{BASE}?limit=2", headers=auth_headers).get_json()
    assert [e["id"] for e in first["data"]] == newest[:2] and first["done"] is False
    second = client.get(f"{BASE}?limit=2&iterator={first['iterator']}", headers=auth_headers)
    assert [e["id"] for e in second.get_json()["data"]] == newest[2:4]
    back = client.get(
        f"{BASE}?limit=2&iterator={second.get_json()['prevIterator']}", headers=auth_headers
    ).get_json()
    assert [e["id"] for e in back["data"]] == newest[:2]
    last = client.get(
        f"{BASE}?limit=2&iterator={second.get_json()['iterator']}", headers=auth_headers
    ).get_json()
    assert [e["id"] for e in last["data"]] == newest[4:] and last["done"] is True
    ascending = client.get(f"{BASE}?order=ascending", headers=auth_headers).get_json()
    assert [e["id"] for e in ascending["data"]] == ids


def test_list_endpoints_only_of_that_app(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    client.post("/api/v1/app", json={"name": "Two", "uid": "two"}, headers=auth_headers)
    post_endpoint(client, auth_headers, "/api/v1/app/two/endpoint")
    body = client.get(BASE, headers=auth_headers).get_json()
    assert body == {"data": [], "iterator": None, "prevIterator": None, "done": True}
    assert client.get("/api/v1/app/nope/endpoint", headers=auth_headers).status_code == 404


def test_get_endpoint_by_id_or_uid(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="main").get_json()
    by_id = client.get(
        f"/api/v1/app/{application['id']}/endpoint/{created['id']}", headers=auth_headers
    )
    assert by_id.get_json() == created
    assert client.get(f"{BASE}/main", headers=auth_headers).get_json() == created


def test_get_endpoint_unknown_or_other_app_returns_404(
    client: FlaskClient,
    auth_headers: Headers,
    other_headers: Headers,
    application: dict[str, Any],
) -> None:
    created = post_endpoint(client, auth_headers).get_json()
    client.post("/api/v1/app", json={"name": "Two", "uid": "two"}, headers=auth_headers)
    assert client.get(f"{BASE}/nope", headers=auth_headers).status_code == 404
    assert (
        client.get(f"/api/v1/app/two/endpoint/{created['id']}", headers=auth_headers).status_code
        == 404
    )
    assert client.get(f"{BASE}/{created['id']}", headers=other_headers).status_code == 404
    assert client.get(f"{BASE}/a%00b", headers=auth_headers).status_code == 404


def test_upsert_endpoint_creates_201_with_path_uid_then_replaces_200(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = client.put(
        f"{BASE}/main",
        json={"url": "https://a.example/h", "throttleRate": 2, "eventTypes": ["user.signup"]},
        headers=auth_headers,
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["uid"] == "main" and stored(body["id"]).secret.startswith("whsec_")
    replaced = client.put(f"{BASE}/main", json={"url": "https://b.example/h"}, headers=auth_headers)
    assert replaced.status_code == 200
    again = replaced.get_json()
    assert (again["id"], again["uid"], again["url"]) == (body["id"], "main", "https://b.example/h")
    assert again["throttleRate"] is None and again["eventTypes"] is None


def test_upsert_endpoint_invalid_returns_422_or_409(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, uid="taken")
    bad_path = client.put(
        f"{BASE}/bad%20uid", json={"url": "https://a.example"}, headers=auth_headers
    )
    assert bad_path.get_json()["detail"][0]["loc"] == ["path", "endpoint_id"]
    no_url = client.put(f"{BASE}/x", json={}, headers=auth_headers)
    assert no_url.get_json()["detail"][0]["loc"] == ["body", "url"]
    taken = client.put(
        f"{BASE}/mine", json={"url": "https://a.example", "uid": "taken"}, headers=auth_headers
    )
    assert taken.status_code == 409


def test_patch_endpoint_absent_keys_stay_unchanged(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(
        client,
        auth_headers,
        uid="main",
        eventTypes=["user.signup"],
        channels=["eu"],
        throttleRate=3,
        metadata={"a": "b"},
    )
    response = client.patch(f"{BASE}/main", json={"description": "New"}, headers=auth_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["description"], body["uid"], body["eventTypes"], body["channels"]) == (
        "New",
        "main",
        ["user.signup"],
        ["eu"],
    )
    assert body["throttleRate"] == 3 and body["metadata"] == {"a": "b"}


def test_patch_endpoint_null_clears_filters_uid_and_throttle_rate(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(
        client,
        auth_headers,
        uid="main",
        eventTypes=["user.signup"],
        channels=["eu"],
        throttleRate=3,
    ).get_json()
    response = client.patch(
        f"{BASE}/main",
        json={"eventTypes": None, "channels": None, "uid": None, "throttleRate": None},
        headers=auth_headers,
    )
    body = response.get_json()
    assert (body["eventTypes"], body["filterTypes"], body["channels"]) == (None, None, None)
    assert (body["uid"], body["throttleRate"], body["id"]) == (None, None, created["id"])


def test_patch_endpoint_invalid_event_types_returns_422(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    response = client.patch(f"{BASE}/main", json={"filterTypes": ["x.y"]}, headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"] == [
        {
            "loc": ["body", "eventTypes"],
            "msg": "The following event types don't exist: x.y",
            "type": "value_error",
        }
    ]
    assert client.patch(f"{BASE}/nope", json={}, headers=auth_headers).status_code == 404


def test_patch_endpoint_reenable_clears_first_failure_at(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="main").get_json()
    row = stored(created["id"])
    row.disabled, row.first_failure_at = True, datetime.now(UTC)
    db.session.commit()
    client.patch(f"{BASE}/main", json={"description": "still off"}, headers=auth_headers)
    assert stored(created["id"]).first_failure_at is not None
    response = client.patch(f"{BASE}/main", json={"disabled": False}, headers=auth_headers)
    assert response.get_json()["disabled"] is False
    assert stored(created["id"]).first_failure_at is None


def test_delete_endpoint_returns_204_then_404(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    response = client.delete(f"{BASE}/main", headers=auth_headers)
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"{BASE}/main", headers=auth_headers).status_code == 404
    assert client.delete(f"{BASE}/main", headers=auth_headers).status_code == 404
