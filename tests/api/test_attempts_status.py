"""Attempts API, delivery status: attempted messages, attempted destinations, endpoint stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.models import Application, Endpoint, MessageStatus, TriggerType
from api.models.common import utcnow
from tests.api import attempts_support
from tests.api.attempts_support import Headers, get, ids
from tests.api.factories import add_delivery, add_endpoint, add_message

# Shared fixtures, bound here so pytest finds them for this module's tests.
endpoint = attempts_support.endpoint
history = attempts_support.history


def test_list_attempted_messages_shows_status_per_message(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    endpoint: Endpoint,
    history: dict[str, Any],
) -> None:
    msg3 = add_message(application, ago=100)
    retry_at = utcnow() + timedelta(minutes=5)
    add_delivery(msg3, endpoint, MessageStatus.SUCCESS)
    add_delivery(
        msg3, endpoint, MessageStatus.SENDING, next_attempt=retry_at, trigger=TriggerType.MANUAL
    )
    response = get(client, auth_headers, "app/shop/endpoint/ep-a/msg", with_content="false")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert [i["id"] for i in data] == [msg3.id, history["msg2"].id, history["msg1"].id]
    assert [(i["status"], i["statusText"]) for i in data] == [
        (3, "sending"),
        (2, "fail"),
        (0, "success"),
    ]
    assert data[0]["nextAttempt"].startswith(retry_at.strftime("%Y-%m-%dT%H:%M"))
    assert data[1].get("nextAttempt") is None
    assert data[1]["payload"] == {} and data[1]["eventType"] == "order.paid"


def test_list_attempted_messages_filters_and_includes_content(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    failed = get(client, auth_headers, "app/shop/endpoint/ep-a/msg", status=2)
    assert ids(failed) == [history["msg2"].id]
    assert failed.get_json()["data"][0]["payload"] == {"a": 1}  # with_content defaults to true
    assert ids(get(client, auth_headers, "app/shop/endpoint/ep-a/msg", channel="c1")) == [
        history["msg2"].id
    ]
    assert ids(
        get(client, auth_headers, "app/shop/endpoint/ep-a/msg", event_types="user.signup")
    ) == [history["msg1"].id]
    page = get(client, auth_headers, "app/shop/endpoint/ep-a/msg", limit=1).get_json()
    assert page["done"] is False and page["iterator"] == history["msg2"].id


def test_list_attempted_destinations_lists_endpoints_with_status(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    endpoint: Endpoint,
    history: dict[str, Any],
) -> None:
    other = add_endpoint(application, uid="ep-b", description="second")
    add_delivery(history["msg1"], other, MessageStatus.FAIL)
    add_endpoint(application, uid="never")
    response = get(client, auth_headers, "app/shop/msg/evt-1/endpoint")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert [i["id"] for i in data] == sorted([endpoint.id, other.id])
    by_uid = {i["uid"]: i for i in data}
    assert (by_uid["ep-a"]["status"], by_uid["ep-a"]["statusText"]) == (0, "success")
    assert (by_uid["ep-b"]["status"], by_uid["ep-b"]["statusText"]) == (2, "fail")
    assert {"id", "url", "description", "createdAt", "updatedAt"} <= by_uid["ep-b"].keys()
    assert "metadata" not in by_uid["ep-b"]
    assert get(client, auth_headers, "app/shop/msg/nope/endpoint").status_code == 404


def test_get_stats_counts_messages_per_status(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    endpoint: Endpoint,
    history: dict[str, Any],
) -> None:
    add_delivery(
        add_message(application, ago=50), endpoint, MessageStatus.SENDING, next_attempt=utcnow()
    )
    add_delivery(add_message(application, ago=29 * 86400), endpoint, MessageStatus.FAIL)
    response = get(client, auth_headers, "app/shop/endpoint/ep-a/stats")
    assert response.status_code == 200
    assert response.get_json() == {
        "success": 1,
        "pending": 0,
        "sending": 1,
        "fail": 1,
        "canceled": 0,
    }
    since = (utcnow() - timedelta(seconds=250)).isoformat()
    windowed = get(client, auth_headers, "app/shop/endpoint/ep-a/stats", since=since)
    assert windowed.get_json()["success"] == 0 and windowed.get_json()["fail"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2024-01-01T00:00:00Z", "until": "2024-03-01T00:00:00Z"},
        {"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
        {"until": (utcnow() + timedelta(days=1)).isoformat()},
    ],
)
def test_get_stats_rejects_invalid_range_with_400(
    client: FlaskClient, auth_headers: Headers, endpoint: Endpoint, params: dict[str, Any]
) -> None:
    response = get(client, auth_headers, "app/shop/endpoint/ep-a/stats", **params)
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_range"


@pytest.mark.parametrize(
    "params",
    [
        {"until": "0001-01-05T00:00:00Z"},
        {"since": "9999-12-01T00:00:00Z"},
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z"},
    ],
)
def test_get_stats_with_extreme_dates_never_500(
    client: FlaskClient, auth_headers: Headers, endpoint: Endpoint, params: dict[str, Any]
) -> None:
    response = get(client, auth_headers, "app/shop/endpoint/ep-a/stats", **params)
    assert response.status_code in (200, 400)
