"""Endpoints API: CRUD and upsert, filters validation, secret get/rotate, custom headers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from api.extensions import db
from api.models import Endpoint
from api.services import endpoints as endpoint_service
from api.services.tokens import create_token

Headers = dict[str, str]
BASE = "/api/v1/app/shop/endpoint"
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


@pytest.fixture
def other_headers(db_session: object) -> Headers:
    """Authorization headers for a second org."""
    _, plain = create_token("other-org")
    return {"Authorization": f"Bearer {plain}"}


@pytest.fixture
def application(client: FlaskClient, auth_headers: Headers) -> dict[str, Any]:
    """An application with uid `shop` and two live event types plus an archived one."""
    for name in ("user.signup", "order.paid", "old.thing"):
        client.post(
            "/api/v1/event-type", json={"name": name, "description": name}, headers=auth_headers
        )
    client.delete("/api/v1/event-type/old.thing", headers=auth_headers)
    response = client.post(
        "/api/v1/app", json={"name": "Shop", "uid": "shop"}, headers=auth_headers
    )
    body: dict[str, Any] = response.get_json()
    return body


def post_endpoint(client: FlaskClient, auth: Headers, path: str = BASE, **body: Any) -> Any:
    """POST an endpoint with a default URL."""
    return client.post(path, json={"url": "https://example.com/hook", **body}, headers=auth)


def stored(endpoint_id: str) -> Endpoint:
    """The endpoint row, fresh from the database."""
    db.session.expire_all()
    row = db.session.scalar(select(Endpoint).where(Endpoint.id == endpoint_id))
    assert row is not None
    return row


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


def test_get_endpoint_secret_returns_current_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, uid="main", secret=SECRET)
    response = client.get(f"{BASE}/main/secret", headers=auth_headers)
    assert response.status_code == 200 and response.get_json() == {"key": SECRET}
    assert client.get(f"{BASE}/nope/secret", headers=auth_headers).status_code == 404


@freeze_time("2024-05-01 12:00:00")
def test_rotate_endpoint_secret_returns_200_new_key_and_keeps_old_for_grace(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="main", secret=SECRET).get_json()
    response = client.post(f"{BASE}/main/secret/rotate", json={}, headers=auth_headers)
    assert response.status_code == 200
    new_key = response.get_json()["key"]
    assert new_key.startswith("whsec_") and new_key != SECRET
    assert client.get(f"{BASE}/main/secret", headers=auth_headers).get_json() == {"key": new_key}
    row = stored(created["id"])
    assert row.secret == new_key
    assert row.old_keys == [{"key": SECRET, "expiration": "2024-05-02T12:00:00+00:00"}]


def test_rotate_endpoint_secret_with_key_and_zero_grace_drops_old_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="main").get_json()
    response = client.post(
        f"{BASE}/main/secret/rotate",
        json={"key": SECRET[6:], "gracePeriodSeconds": 0},
        headers=auth_headers,
    )
    assert response.get_json() == {"key": SECRET}
    assert stored(created["id"]).old_keys == []


def test_rotate_endpoint_secret_prunes_expired_old_keys(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="main").get_json()
    url = f"{BASE}/main/secret/rotate"
    with freeze_time("2024-05-01 12:00:00") as frozen:
        client.post(url, json={"gracePeriodSeconds": 60}, headers=auth_headers)
        client.post(url, json={"gracePeriodSeconds": 3600}, headers=auth_headers)
        frozen.tick(timedelta(seconds=120))
        client.post(url, json={}, headers=auth_headers)
    expirations = [k["expiration"] for k in stored(created["id"]).old_keys]
    assert expirations == ["2024-05-02T12:02:00+00:00", "2024-05-01T13:00:00+00:00"]


def test_rotate_endpoint_secret_eleventh_live_key_returns_400_limit_reached(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    url = f"{BASE}/main/secret/rotate"
    for _ in range(10):
        assert client.post(url, json={}, headers=auth_headers).status_code == 200
    response = client.post(url, json={}, headers=auth_headers)
    assert response.status_code == 400 and response.get_json()["code"] == "limit_reached"
    immediate = client.post(url, json={"gracePeriodSeconds": 0}, headers=auth_headers)
    assert immediate.status_code == 200  # no new old key: still allowed


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"gracePeriodSeconds": 604801}, ["body", "gracePeriodSeconds"]),
        ({"gracePeriodSeconds": -1}, ["body", "gracePeriodSeconds"]),
        ({"key": "whsec_tooshort"}, ["body", "key"]),
    ],
)
def test_rotate_endpoint_secret_invalid_body_returns_422(
    client: FlaskClient,
    auth_headers: Headers,
    application: dict[str, Any],
    body: dict[str, Any],
    loc: list[str],
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    response = client.post(f"{BASE}/main/secret/rotate", json=body, headers=auth_headers)
    assert response.status_code == 422 and response.get_json()["detail"][0]["loc"] == loc


def test_get_endpoint_headers_withholds_sensitive_values(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    url = f"{BASE}/main/headers"
    assert client.get(url, headers=auth_headers).get_json() == {"headers": {}, "sensitive": []}
    response = client.put(
        url, json={"headers": {"Authorization": "Bearer x", "X-Team": "a"}}, headers=auth_headers
    )
    assert response.status_code == 204 and response.data == b""
    assert client.get(url, headers=auth_headers).get_json() == {
        "headers": {"X-Team": "a"},
        "sensitive": ["Authorization"],
    }


def test_set_endpoint_headers_replaces_all(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="main", headers={"X-Old": "1"}).get_json()
    client.put(f"{BASE}/main/headers", json={"headers": {"X-New": "2"}}, headers=auth_headers)
    assert stored(created["id"]).headers == {"X-New": "2"}


def test_patch_endpoint_headers_merges_and_null_deletes(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(
        client, auth_headers, uid="main", headers={"X-A": "1", "X-B": "2", "X-C": "3"}
    ).get_json()
    response = client.patch(
        f"{BASE}/main/headers",
        json={"headers": {"x-a": "one", "X-B": None, "X-D": "4"}, "deleteHeaders": ["x-c"]},
        headers=auth_headers,
    )
    assert response.status_code == 204
    assert stored(created["id"]).headers == {"x-a": "one", "X-D": "4"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"user-agent": "x"},
        {"svix-id": "x"},
        {"webhook-signature": "x"},
        {"X-Amz-Date": "x"},
        {"x-svix-foo": "x"},
        {"bad name": "x"},
        {"X-Ok": "line\nbreak"},
        {"X-Ok": "x" * 4097},
    ],
)
def test_set_endpoint_headers_invalid_returns_422(
    client: FlaskClient,
    auth_headers: Headers,
    application: dict[str, Any],
    headers: dict[str, str],
) -> None:
    post_endpoint(client, auth_headers, uid="main")
    for method in (client.put, client.patch):
        response = method(f"{BASE}/main/headers", json={"headers": headers}, headers=auth_headers)
        assert response.status_code == 422
        assert response.get_json()["detail"][0]["loc"] == ["body", "headers"]


def test_endpoint_headers_unknown_endpoint_returns_404_and_no_token_401(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    url = f"{BASE}/nope/headers"
    assert client.get(url, headers=auth_headers).status_code == 404
    assert client.put(url, json={"headers": {}}, headers=auth_headers).status_code == 404
    assert client.get(url).status_code == 401
