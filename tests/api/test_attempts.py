"""Attempts API: the attempt log, per-destination status, resend, recover and stats."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import db
from api.ids import new_id
from api.models import (
    Application,
    BackgroundTask,
    Delivery,
    Endpoint,
    Message,
    MessageAttempt,
    MessageStatus,
    Organization,
    TriggerType,
)
from api.models.common import utcnow

Headers = dict[str, str]
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


@pytest.fixture
def endpoint(application: Application) -> Endpoint:
    """An endpoint with uid `ep-a`."""
    return add_endpoint(application, uid="ep-a")


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every task published by name during the test (nothing reaches Redis)."""
    calls: list[tuple[Any, ...]] = []

    def fake(name: str, *args: Any) -> bool:
        calls.append((name, *args))
        return True

    monkeypatch.setattr(
        "api.services.outbox.enqueue_many",
        lambda name, arg_lists: sum(fake(name, *args) for args in arg_lists),
    )
    monkeypatch.setattr("api.services.recovery.enqueue", fake)
    return calls


def add_endpoint(app: Application, **fields: Any) -> Endpoint:
    """An endpoint row."""
    endpoint = Endpoint(app_id=app.id, url="https://example.com/hook", secret="whsec_x", **fields)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def add_message(app: Application, ago: float = 60.0, **fields: Any) -> Message:
    """A message created `ago` seconds ago with payload {"a": 1}."""
    at = time.time() - ago
    fields.setdefault("payload", '{"a":1}')
    fields.setdefault("event_type", "user.signup")
    fields.setdefault("expiration", utcnow() + timedelta(days=90))
    message = Message(id=new_id("msg", at), app_id=app.id, org_id=app.org_id, **fields)
    db.session.add(message)
    db.session.commit()
    return message


def add_delivery(
    message: Message,
    endpoint: Endpoint,
    status: int,
    next_attempt: Any = None,
    trigger: int = TriggerType.SCHEDULED,
) -> Delivery:
    """A delivery row in the given state."""
    delivery = Delivery(
        msg_id=message.id,
        endpoint_id=endpoint.id,
        app_id=message.app_id,
        status=status,
        trigger_type=trigger,
        next_attempt_at=next_attempt,
    )
    db.session.add(delivery)
    db.session.commit()
    return delivery


def add_attempt(
    delivery: Delivery, status: int, code: int = 200, ago: float = 30.0, response: str = "ok"
) -> MessageAttempt:
    """An attempt of the delivery made `ago` seconds ago."""
    at = time.time() - ago
    attempt = MessageAttempt(
        id=new_id("atmpt", at),
        msg_id=delivery.msg_id,
        endpoint_id=delivery.endpoint_id,
        delivery_id=delivery.id,
        app_id=delivery.app_id,
        url="https://example.com/hook",
        response=response,
        response_status_code=code,
        response_duration_ms=12,
        status=status,
        trigger_type=delivery.trigger_type,
    )
    db.session.add(attempt)
    db.session.commit()
    return attempt


@pytest.fixture
def history(application: Application, endpoint: Endpoint) -> dict[str, Any]:
    """msg1 failed (500) then succeeded on endpoint; msg2 (channel c1) failed with a 0."""
    msg1 = add_message(application, ago=300, event_id="evt-1")
    msg2 = add_message(application, ago=200, event_type="order.paid", channels=["c1"], tags=["t1"])
    d1 = add_delivery(msg1, endpoint, MessageStatus.SUCCESS)
    d2 = add_delivery(msg2, endpoint, MessageStatus.FAIL)
    return {
        "msg1": msg1,
        "msg2": msg2,
        "a1": add_attempt(d1, MessageStatus.FAIL, 500, ago=100, response="boom"),
        "a2": add_attempt(d1, MessageStatus.SUCCESS, 200, ago=90),
        "a3": add_attempt(d2, MessageStatus.FAIL, 0, ago=80, response="connect refused"),
    }


def get(client: FlaskClient, headers: Headers, path: str, **params: Any) -> Any:
    """GET /api/v1/<path> with query params; returns the response."""
    return client.get(f"/api/v1/{path}", query_string=params, headers=headers)


def ids(response: Any) -> list[str]:
    """The ids of a list response's items."""
    return [item["id"] for item in response.get_json()["data"]]


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


def test_resend_returns_202_empty_object_and_queues_manual_delivery(
    client: FlaskClient,
    auth_headers: Headers,
    history: dict[str, Any],
    enqueued: list[tuple[Any, ...]],
) -> None:
    response = client.post("/api/v1/app/shop/msg/evt-1/endpoint/ep-a/resend", headers=auth_headers)
    assert response.status_code == 202
    assert response.get_json() == {}
    manual = db.session.scalars(
        select(Delivery).where(
            Delivery.msg_id == history["msg1"].id, Delivery.trigger_type == TriggerType.MANUAL
        )
    ).all()
    assert len(manual) == 1 and manual[0].status == MessageStatus.SENDING
    assert manual[0].lease_token and manual[0].next_attempt_at is not None
    assert enqueued == [("herald.deliver", manual[0].id, manual[0].lease_token)]


def test_resend_ignores_endpoint_filters(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    history: dict[str, Any],
    enqueued: list[tuple[Any, ...]],
) -> None:
    add_endpoint(application, uid="picky", event_types=["nothing.matches"], channels=["zz"])
    response = client.post("/api/v1/app/shop/msg/evt-1/endpoint/picky/resend", headers=auth_headers)
    assert response.status_code == 202 and len(enqueued) == 1


def test_resend_to_disabled_endpoint_is_202_and_sends_nothing(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    history: dict[str, Any],
    enqueued: list[tuple[Any, ...]],
) -> None:
    add_endpoint(application, uid="off", disabled=True)
    response = client.post("/api/v1/app/shop/msg/evt-1/endpoint/off/resend", headers=auth_headers)
    assert (response.status_code, response.get_json()) == (202, {})
    assert enqueued == []


@pytest.mark.parametrize(
    "change", [{"payload": None}, {"expiration": utcnow() - timedelta(seconds=1)}]
)
def test_resend_of_expired_payload_is_400_missing_payload(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    endpoint: Endpoint,
    enqueued: list[tuple[Any, ...]],
    change: dict[str, Any],
) -> None:
    message = add_message(application, **change)
    response = client.post(
        f"/api/v1/app/shop/msg/{message.id}/endpoint/ep-a/resend", headers=auth_headers
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "missing_payload"
    assert enqueued == []


def test_resend_to_unknown_endpoint_is_404(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    response = client.post("/api/v1/app/shop/msg/evt-1/endpoint/nope/resend", headers=auth_headers)
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


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


def test_recover_returns_202_running_task_and_enqueues_it(
    client: FlaskClient,
    auth_headers: Headers,
    endpoint: Endpoint,
    enqueued: list[tuple[Any, ...]],
) -> None:
    since = (utcnow() - timedelta(days=2)).isoformat()
    response = client.post(
        "/api/v1/app/shop/endpoint/ep-a/recover", json={"since": since}, headers=auth_headers
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["id"].startswith("qtask_") and body["updatedAt"].endswith("Z")
    assert (body["status"], body["task"]) == ("running", "endpoint.recover")
    task = db.session.get(BackgroundTask, body["id"])
    assert task.data["endpointId"] == endpoint.id
    assert enqueued == [("herald.recover_endpoint", body["id"])]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"since": (utcnow() - timedelta(days=15)).isoformat()}, ["body", "since"]),
        ({"since": "2024-01-01T00:00:00Z", "until": "2024-01-20T00:00:00Z"}, ["body", "since"]),
        ({}, ["body", "since"]),
        ({"since": "not a date"}, ["body", "since"]),
    ],
)
def test_recover_rejects_bad_window_with_422(
    client: FlaskClient,
    auth_headers: Headers,
    endpoint: Endpoint,
    enqueued: list[tuple[Any, ...]],
    body: dict[str, Any],
    loc: list[str],
) -> None:
    response = client.post(
        "/api/v1/app/shop/endpoint/ep-a/recover", json=body, headers=auth_headers
    )
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == loc
    assert enqueued == []


def test_recover_accepts_14_day_window_and_404_for_unknown_endpoint(
    client: FlaskClient,
    auth_headers: Headers,
    endpoint: Endpoint,
    enqueued: list[tuple[Any, ...]],
) -> None:
    body = {"since": "2024-01-01T00:00:00Z", "until": "2024-01-15T00:00:00"}
    ok = client.post("/api/v1/app/shop/endpoint/ep-a/recover", json=body, headers=auth_headers)
    assert ok.status_code == 202
    missing = client.post("/api/v1/app/shop/endpoint/nope/recover", json=body, headers=auth_headers)
    assert missing.status_code == 404


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


@pytest.mark.parametrize(
    "body",
    [
        {"since": "9999-12-30T00:00:00Z"},
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z"},
    ],
)
def test_recover_with_extreme_dates_runs_without_error(
    client: FlaskClient,
    auth_headers: Headers,
    history: dict[str, Any],
    enqueued: list[tuple[Any, ...]],
    body: dict[str, Any],
) -> None:
    from api.services.recovery import run_recovery

    response = client.post(
        "/api/v1/app/shop/endpoint/ep-a/recover", json=body, headers=auth_headers
    )
    assert response.status_code == 202
    assert run_recovery(response.get_json()["id"]) == 0
