"""Endpoints API, signing secret: get the current key, rotate with a grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time

from tests.api import endpoints_support
from tests.api.endpoints_support import BASE, SECRET, Headers, post_endpoint, stored

# Shared fixtures, bound here so pytest finds them for this module's tests.
application = endpoints_support.application


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
