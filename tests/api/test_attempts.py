"""Attempts API, the attempt log: list attempts by message or endpoint, get one attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.extensions import db
from api.models import Application, Endpoint, MessageStatus, Organization
from api.models.common import utcnow
from tests.api import attempts_support
from tests.api.attempts_support import Headers, get, ids
from tests.api.factories import add_attempt, add_delivery, add_endpoint, add_message

ATTEMPT_KEYS = {
    "id",
    "msgId",
    "endpointId",
    "url",
    "response",
    "responseStatusCode",
    "responseDurationMs",
    "status",
    "statusText",
    "triggerType",
    "timestamp",
}

# Shared fixtures, bound here so pytest finds them for this module's tests.
endpoint = attempts_support.endpoint
history = attempts_support.history


def test_list_attempts_by_msg_returns_newest_first_with_all_keys(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    response = get(client, auth_headers, "app/shop/attempt/msg/evt-1")
    assert response.status_code == 200
    body = response.get_json()
    assert ids(response) == [history["a2"].id, history["a1"].id]
    assert body["done"] is True and body["iterator"] == history["a1"].id
    item = body["data"][1]
    assert ATTEMPT_KEYS <= item.keys() and "msg" not in item
    assert (item["status"], item["statusText"], item["responseStatusCode"]) == (2, "fail", 500)
    assert (item["response"], item["triggerType"], item["responseDurationMs"]) == ("boom", 0, 12)
    assert item["timestamp"].endswith("Z") and item["msgId"] == history["msg1"].id


def test_list_attempts_without_content_returns_empty_response(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    response = get(
        client,
        auth_headers,
        "app/shop/attempt/msg/evt-1",
        with_content="false",
        expanded_statuses="true",
    )
    assert response.status_code == 200
    assert [i["response"] for i in response.get_json()["data"]] == ["{}", "{}"]


def test_list_attempts_by_endpoint_with_msg_embeds_message_without_payload(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    response = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", with_msg="true")
    data = response.get_json()["data"]
    assert [i["id"] for i in data] == [history[k].id for k in ("a3", "a2", "a1")]
    assert data[0]["msg"]["id"] == history["msg2"].id
    assert data[0]["msg"]["payload"] == {} and data[0]["msg"]["channels"] == ["c1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": 0}, ["a2"]),
        ({"status": 2}, ["a3", "a1"]),
        ({"status_code_class": 500}, ["a1"]),
        ({"status_code_class": 0}, ["a3"]),
        ({"status_code_class": 200}, ["a2"]),
        ({"event_types": "order.paid,other"}, ["a3"]),
        ({"channel": "c1"}, ["a3"]),
        ({"tag": "t1"}, ["a3"]),
        ({"channel": "nope"}, []),
    ],
)
def test_list_attempts_by_endpoint_filters(
    client: FlaskClient,
    auth_headers: Headers,
    history: dict[str, Any],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    response = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", **params)
    assert response.status_code == 200
    assert ids(response) == [history[k].id for k in expected]


def test_list_attempts_filters_by_time(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    cut = (utcnow() - timedelta(seconds=95)).isoformat()
    after = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", after=cut)
    before = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", before=cut)
    assert ids(after) == [history["a3"].id, history["a2"].id]
    assert ids(before) == [history["a1"].id]


def test_list_attempts_by_msg_filters_by_endpoint_id_or_uid(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    history: dict[str, Any],
) -> None:
    other = add_endpoint(application, uid="ep-b")
    add_attempt(add_delivery(history["msg1"], other, MessageStatus.FAIL), MessageStatus.FAIL)
    path = f"app/shop/attempt/msg/{history['msg1'].id}"
    assert len(ids(get(client, auth_headers, path))) == 3
    assert len(ids(get(client, auth_headers, path, endpoint_id="ep-b"))) == 1
    assert get(client, auth_headers, path, endpoint_id="missing").status_code == 404


def test_list_attempts_paginates_by_attempt_id(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    first = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", limit=2).get_json()
    assert [i["id"] for i in first["data"]] == [history["a3"].id, history["a2"].id]
    assert first["done"] is False
    second = get(
        client, auth_headers, "app/shop/attempt/endpoint/ep-a", limit=2, iterator=first["iterator"]
    ).get_json()
    assert [i["id"] for i in second["data"]] == [history["a1"].id]
    assert second["done"] is True
    back = get(
        client,
        auth_headers,
        "app/shop/attempt/endpoint/ep-a",
        limit=2,
        iterator=second["prevIterator"],
    ).get_json()
    assert [i["id"] for i in back["data"]] == [history["a3"].id, history["a2"].id]


def test_list_attempts_excludes_attempts_older_than_90_days_unless_after_given(
    client: FlaskClient, auth_headers: Headers, application: Application, endpoint: Endpoint
) -> None:
    old = add_message(application, ago=100 * 86400)
    attempt = add_attempt(
        add_delivery(old, endpoint, MessageStatus.FAIL), MessageStatus.FAIL, ago=100 * 86400
    )
    assert ids(get(client, auth_headers, "app/shop/attempt/endpoint/ep-a")) == []
    after = (utcnow() - timedelta(days=101)).isoformat()
    found = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", after=after)
    assert ids(found) == [attempt.id]


@pytest.mark.parametrize(
    "params",
    [
        {"status": 9},
        {"status": "x"},
        {"status_code_class": 250},
        {"limit": 0},
        {"limit": 251},
        {"before": "yesterday"},
        {"event_types": "bad type"},
        {"channel": "a b"},
        {"with_msg": "maybe"},
    ],
)
def test_list_attempts_rejects_bad_query_with_422(
    client: FlaskClient, auth_headers: Headers, endpoint: Endpoint, params: dict[str, Any]
) -> None:
    response = get(client, auth_headers, "app/shop/attempt/endpoint/ep-a", **params)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][0] == "query"


def test_list_attempts_of_unknown_or_foreign_objects_is_404(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    assert get(client, auth_headers, "app/nope/attempt/endpoint/ep-a").status_code == 404
    assert get(client, auth_headers, "app/shop/attempt/endpoint/nope").status_code == 404
    assert get(client, auth_headers, "app/shop/attempt/msg/nope").status_code == 404
    other = Organization(name="other-org")
    db.session.add(other)
    db.session.flush()
    foreign = Application(org_id=other.id, name="Theirs")
    db.session.add(foreign)
    db.session.commit()
    path = f"app/{foreign.id}/attempt/msg/{history['msg1'].id}"
    assert get(client, auth_headers, path).status_code == 404


def test_list_attempts_requires_auth(client: FlaskClient, history: dict[str, Any]) -> None:
    response = client.get("/api/v1/app/shop/attempt/endpoint/ep-a")
    assert response.status_code == 401
    assert response.get_json()["code"] == "authentication_failed"


def test_get_attempt_returns_it_and_404_for_another_message(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    a1 = history["a1"]
    response = get(
        client, auth_headers, f"app/shop/msg/evt-1/attempt/{a1.id}", expanded_statuses="true"
    )
    assert response.status_code == 200
    assert response.get_json()["id"] == a1.id and response.get_json()["response"] == "boom"
    assert ATTEMPT_KEYS <= response.get_json().keys()
    wrong = get(client, auth_headers, f"app/shop/msg/{history['msg2'].id}/attempt/{a1.id}")
    assert wrong.status_code == 404
    assert get(client, auth_headers, "app/shop/msg/evt-1/attempt/atmpt_x").status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"before": "0001-01-01T00:00:00Z"},
        {"after": "9999-12-31T00:00:00Z"},
        {"before": "2200-01-01T00:00:00Z"},
        {"after": "0001-01-01T00:00:00+05:00"},
        {"iterator": "atmpt_zzzzzzzzzzzzzzzzzzzzzzzzzzz"},
        {"iterator": "-"},
    ],
)
def test_list_routes_with_extreme_dates_or_iterators_never_500(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any], params: dict[str, Any]
) -> None:
    for path in (
        "app/shop/attempt/endpoint/ep-a",
        "app/shop/attempt/msg/evt-1",
        "app/shop/endpoint/ep-a/msg",
        "app/shop/msg/evt-1/endpoint",
    ):
        response = get(client, auth_headers, path, **params)
        assert response.status_code in (200, 422), (path, response.get_json())
