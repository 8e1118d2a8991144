"""Endpoints API, custom headers: get (sensitive values withheld), replace, merge, validate."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api import endpoints_support
from tests.api.endpoints_support import BASE, Headers, post_endpoint, stored

# Shared fixtures, bound here so pytest finds them for this module's tests.
application = endpoints_support.application


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
