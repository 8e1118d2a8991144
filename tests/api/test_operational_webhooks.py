"""Operational-webhook endpoints API: /api/v1/operational-webhook/endpoint and its routes."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import db
from api.models import Application, Endpoint

BASE = "/api/v1/operational-webhook/endpoint"
Headers = dict[str, str]
OUT_KEYS = {
    "id",
    "uid",
    "url",
    "description",
    "throttleRate",
    "disabled",
    "eventTypes",
    "metadata",
    "createdAt",
    "updatedAt",
}


def create(client: FlaskClient, auth: Headers, **body: Any) -> Any:
    body.setdefault("url", "https://ops.example.com/hook")
    response = client.post(BASE, json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_operational_endpoint_returns_svix_shape(
    client: FlaskClient, auth_headers: Headers
) -> None:
    out = create(
        client,
        auth_headers,
        uid="ops",
        description="alerts",
        eventTypes=["endpoint.disabled", "message.attempt.exhausted"],
        metadata={"team": "sre"},
        throttleRate=5,
    )
    assert set(out) == OUT_KEYS
    assert out["id"].startswith("ep_") and out["uid"] == "ops" and out["disabled"] is False
    assert out["eventTypes"] == ["endpoint.disabled", "message.attempt.exhausted"]
    assert (out["metadata"], out["throttleRate"], out["description"]) == (
        {"team": "sre"},
        5,
        "alerts",
    )


def test_create_operational_endpoint_refuses_unknown_event_type(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = client.post(
        BASE,
        json={"url": "https://ops.example.com", "eventTypes": ["user.signup"]},
        headers=auth_headers,
    )
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "eventTypes"]


def test_create_operational_endpoint_refuses_bad_url(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = client.post(BASE, json={"url": "ftp://x"}, headers=auth_headers)
    assert response.status_code == 422


def test_operational_app_is_hidden_from_the_application_list(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    create(client, auth_headers)
    apps = client.get("/api/v1/app", headers=auth_headers).get_json()
    assert apps["data"] == []
    internal = db.session.scalars(select(Application).where(Application.org_id == org_id)).all()
    assert [app.internal for app in internal] == [True]


def test_list_operational_endpoints_newest_first_with_pages(
    client: FlaskClient, auth_headers: Headers
) -> None:
    assert client.get(BASE, headers=auth_headers).get_json() == {
        "data": [],
        "iterator": None,
        "prevIterator": None,
        "done": True,
    }
    ids = [create(client, auth_headers)["id"] for _ in range(3)]
    first = client.get(f"{BASE}?limit=2", headers=auth_headers).get_json()
    assert [e["id"] for e in first["data"]] == sorted(ids, reverse=True)[:2]
    assert first["done"] is False
    asc = client.get(f"{BASE}?order=ascending", headers=auth_headers).get_json()
    assert [e["id"] for e in asc["data"]] == sorted(ids)


def test_list_operational_endpoints_leaves_out_application_endpoints(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    client.post(
        "/api/v1/app/shop/endpoint", json={"url": "https://a.example.com"}, headers=auth_headers
    )
    ops = create(client, auth_headers)
    listed = client.get(BASE, headers=auth_headers).get_json()["data"]
    assert [e["id"] for e in listed] == [ops["id"]]


def test_get_operational_endpoint_by_id_and_uid(client: FlaskClient, auth_headers: Headers) -> None:
    out = create(client, auth_headers, uid="ops")
    for key in (out["id"], "ops"):
        got = client.get(f"{BASE}/{key}", headers=auth_headers)
        assert got.status_code == 200 and got.get_json() == out


def test_get_operational_endpoint_missing_is_404(
    client: FlaskClient, auth_headers: Headers
) -> None:
    assert client.get(f"{BASE}/ep_nothing", headers=auth_headers).status_code == 404
    create(client, auth_headers)
    assert client.get(f"{BASE}/ep_nothing", headers=auth_headers).status_code == 404


def test_get_operational_endpoint_refuses_an_application_endpoint(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    create(client, auth_headers)
    other = client.post(
        "/api/v1/app/shop/endpoint", json={"url": "https://a.example.com"}, headers=auth_headers
    ).get_json()
    assert client.get(f"{BASE}/{other['id']}", headers=auth_headers).status_code == 404


def test_upsert_operational_endpoint_updates_then_creates(
    client: FlaskClient, auth_headers: Headers
) -> None:
    out = create(client, auth_headers, uid="ops", description="old")
    updated = client.put(
        f"{BASE}/{out['id']}", json={"url": "https://new.example.com/"}, headers=auth_headers
    )
    assert updated.status_code == 200
    body = updated.get_json()
    assert body["url"] == "https://new.example.com/" and body["description"] == ""
    assert body["uid"] is None  # a full replacement
    made = client.put(f"{BASE}/fresh", json={"url": "https://b.example.com/"}, headers=auth_headers)
    assert made.status_code == 201 and made.get_json()["uid"] == "fresh"


def test_upsert_operational_endpoint_refuses_unknown_event_type(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = client.put(
        f"{BASE}/ops",
        json={"url": "https://b.example.com/", "eventTypes": ["nope"]},
        headers=auth_headers,
    )
    assert response.status_code == 422


def test_delete_operational_endpoint(client: FlaskClient, auth_headers: Headers) -> None:
    out = create(client, auth_headers)
    assert client.delete(f"{BASE}/{out['id']}", headers=auth_headers).status_code == 204
    assert client.get(f"{BASE}/{out['id']}", headers=auth_headers).status_code == 404
    assert client.delete(f"{BASE}/{out['id']}", headers=auth_headers).status_code == 404


def test_get_and_rotate_operational_endpoint_secret(
    client: FlaskClient, auth_headers: Headers
) -> None:
    secret = "whsec_" + "A" * 32
    out = create(client, auth_headers, secret=secret)
    url = f"{BASE}/{out['id']}/secret"
    assert client.get(url, headers=auth_headers).get_json() == {"key": secret}
    rotated = client.post(f"{url}/rotate", json={}, headers=auth_headers)
    assert rotated.status_code == 204
    new = client.get(url, headers=auth_headers).get_json()["key"]
    assert new.startswith("whsec_") and new != secret
    endpoint = db.session.get(Endpoint, out["id"])
    assert endpoint is not None and [k["key"] for k in endpoint.old_keys] == [secret]
    given = "whsec_" + "B" * 32
    client.post(f"{url}/rotate", json={"key": given, "gracePeriodSeconds": 0}, headers=auth_headers)
    assert client.get(url, headers=auth_headers).get_json() == {"key": given}
    bad = client.post(f"{url}/rotate", json={"gracePeriodSeconds": -1}, headers=auth_headers)
    assert bad.status_code == 422


def test_get_and_set_operational_endpoint_headers(
    client: FlaskClient, auth_headers: Headers
) -> None:
    out = create(client, auth_headers, headers={"X-First": "1"})
    url = f"{BASE}/{out['id']}/headers"
    assert client.get(url, headers=auth_headers).get_json() == {
        "headers": {"X-First": "1"},
        "sensitive": [],
    }
    body = {"headers": {"X-Team": "sre", "Authorization": "Bearer s"}}
    assert client.put(url, json=body, headers=auth_headers).status_code == 204
    assert client.get(url, headers=auth_headers).get_json() == {
        "headers": {"X-Team": "sre"},
        "sensitive": ["Authorization"],
    }
    bad = client.put(url, json={"headers": {"Content-Length": "1"}}, headers=auth_headers)
    assert bad.status_code == 422


def test_operational_routes_need_auth(client: FlaskClient) -> None:
    assert client.get(BASE).status_code == 401
    assert client.post(BASE, json={"url": "https://x.example.com"}).status_code == 401


def test_operational_endpoints_are_per_org(client: FlaskClient, auth_headers: Headers) -> None:
    from api.services import tokens

    out = create(client, auth_headers)
    _, other = tokens.create_token("other-org")
    other_headers = {"Authorization": f"Bearer {other}"}
    assert client.get(f"{BASE}/{out['id']}", headers=other_headers).status_code == 404
    assert client.get(BASE, headers=other_headers).get_json()["data"] == []
