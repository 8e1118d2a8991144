"""The less common Svix operations: attempt expunge, background tasks, replay-missing, the
attempt count and app stats, message precheck and bulk/all expunge, `expanded_statuses`."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select, text

from api.extensions import db, get_redis
from api.ids import new_id
from api.models import (
    Application,
    BackgroundTask,
    Delivery,
    Endpoint,
    Message,
    MessageStatus,
    Organization,
    TriggerType,
)
from api.models.common import utcnow
from api.services import background_tasks, recovery
from tests.api import attempts_support
from tests.api.attempts_support import Headers, get, ids
from tests.api.factories import add_attempt, add_delivery, add_endpoint, add_message

# Shared fixtures, bound here so pytest finds them for this module's tests.
endpoint = attempts_support.endpoint
history = attempts_support.history


def other_org_app() -> Application:
    """An application `shop` of another org (its objects must stay invisible)."""
    org = Organization(name="other-org")
    db.session.add(org)
    db.session.flush()
    app = Application(org_id=org.id, name="Theirs", uid="shop")
    db.session.add(app)
    db.session.commit()
    return app


def since(hours: float = 1.0) -> str:
    """The moment `hours` ago, as a query or body value."""
    return (utcnow() - timedelta(hours=hours)).isoformat()


def manual_deliveries(endpoint: Endpoint) -> list[Delivery]:
    """The endpoint's manual deliveries, by message id."""
    return list(
        db.session.scalars(
            select(Delivery)
            .where(Delivery.endpoint_id == endpoint.id, Delivery.trigger_type == TriggerType.MANUAL)
            .order_by(Delivery.msg_id)
        )
    )


# -- DELETE .../msg/{msg_id}/attempt/{attempt_id}/content ---------------------------------------


def test_expunge_attempt_content_answers_204_and_the_response_reads_expunged(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    a1, a2 = history["a1"], history["a2"]
    response = client.delete(
        f"/api/v1/app/shop/msg/evt-1/attempt/{a1.id}/content", headers=auth_headers
    )
    assert (response.status_code, response.data) == (204, b"")
    got = get(client, auth_headers, f"app/shop/msg/evt-1/attempt/{a1.id}").get_json()
    assert got["response"] == "EXPUNGED" and got["responseStatusCode"] == 500
    other = get(client, auth_headers, f"app/shop/msg/evt-1/attempt/{a2.id}").get_json()
    assert other["response"] == "ok"


def test_expunge_attempt_content_404_for_unknown_other_message_or_other_org(
    client: FlaskClient, auth_headers: Headers, history: dict[str, Any]
) -> None:
    a1, msg2 = history["a1"], history["msg2"]
    theirs = other_org_app()
    for path in (
        "app/shop/msg/evt-1/attempt/atmpt_nope/content",
        f"app/shop/msg/{msg2.id}/attempt/{a1.id}/content",
        f"app/{theirs.id}/msg/evt-1/attempt/{a1.id}/content",
    ):
        response = client.delete(f"/api/v1/{path}", headers=auth_headers)
        assert (response.status_code, response.get_json()["code"]) == (404, "not_found")
    assert db.session.get(type(a1), a1.id).response == "boom"


# -- GET /background-task, GET /background-task/{task_id} ---------------------------------------


def add_task(
    org_id: str,
    task: str = "endpoint.recover",
    status: str = "running",
    ago: float = 0.0,
    **data: Any,
) -> BackgroundTask:
    """A background task row of the org, made `ago` seconds ago (ids sort by that time)."""
    row = BackgroundTask(
        id=new_id("qtask", time.time() - ago), org_id=org_id, task=task, status=status, data=data
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_get_background_task_returns_its_status_and_counts(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    done = add_task(org_id, status="finished", endpointId="ep_x", since="...", resent=3)
    body = get(client, auth_headers, f"background-task/{done.id}").get_json()
    assert body == {
        "id": done.id,
        "status": "finished",
        "task": "endpoint.recover",
        "data": {"messagesSent": 3},  # the worker's bookkeeping stays private
        "updatedAt": body["updatedAt"],
    }
    assert body["updatedAt"].endswith("Z")
    running = add_task(org_id, task="endpoint.replay")
    assert get(client, auth_headers, f"background-task/{running.id}").get_json()["data"] == {}


def test_get_background_task_of_another_org_or_unknown_is_404(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    theirs = add_task(other_org_app().org_id)
    for task_id in (theirs.id, "qtask_nope"):
        response = get(client, auth_headers, f"background-task/{task_id}")
        assert (response.status_code, response.get_json()["code"]) == (404, "not_found")


def test_list_background_tasks_filters_orders_pages_and_is_org_scoped(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    with freeze_time(utcnow() - timedelta(days=91)):
        add_task(org_id)  # older than the 90 days the list covers
    first = add_task(org_id, status="finished", ago=30)
    second = add_task(org_id, task="endpoint.replay", ago=20)
    third = add_task(org_id, task="application.purge_content", status="failed", ago=10)
    add_task(other_org_app().org_id)
    newest_first = get(client, auth_headers, "background-task")
    assert ids(newest_first) == [third.id, second.id, first.id]
    ascending = get(client, auth_headers, "background-task", order="ascending")
    assert ids(ascending) == [first.id, second.id, third.id]
    assert ids(get(client, auth_headers, "background-task", status="finished")) == [first.id]
    assert ids(get(client, auth_headers, "background-task", task="endpoint.replay")) == [second.id]
    page = get(client, auth_headers, "background-task", limit=2).get_json()
    assert page["done"] is False and page["iterator"] == second.id
    rest = get(client, auth_headers, "background-task", limit=2, iterator=page["iterator"])
    assert ids(rest) == [first.id] and rest.get_json()["done"] is True
    bad = get(client, auth_headers, "background-task", task="nope")
    assert bad.status_code == 422 and bad.get_json()["detail"][0]["loc"] == ["query", "task"]


# -- POST .../endpoint/{endpoint_id}/replay-missing ---------------------------------------------


def test_replay_missing_sends_only_what_the_endpoint_never_got(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    ep = add_endpoint(application, uid="late", event_types=["user.signup"])
    got_it = add_message(application, ago=600)
    add_delivery(got_it, ep, MessageStatus.FAIL)  # routed there once: not "missing"
    missing = [add_message(application, ago=500), add_message(application, ago=400)]
    add_message(application, ago=300, event_type="order.paid")  # the endpoint's filter
    add_message(application, ago=200, payload=None)  # expunged
    add_message(application, ago=100, expiration=utcnow() - timedelta(seconds=1))  # expired
    add_message(application, ago=7200)  # before `since`
    other_app = Application(org_id=application.org_id, name="Other")
    db.session.add(other_app)
    db.session.commit()
    add_message(other_app, ago=50)

    response = client.post(
        "/api/v1/app/shop/endpoint/late/replay-missing",
        json={"since": since()},
        headers=auth_headers,
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["id"].startswith("qtask_") and set(body) == {"id", "status", "task", "updatedAt"}
    assert (body["status"], body["task"]) == ("running", "endpoint.replay")

    assert recovery.run_replay(body["id"]) == 2
    sent = manual_deliveries(ep)
    assert [d.msg_id for d in sent] == [m.id for m in missing]
    assert all(d.status == MessageStatus.SENDING and d.next_attempt_at for d in sent)
    task = get(client, auth_headers, f"background-task/{body['id']}").get_json()
    assert (task["status"], task["data"]) == ("finished", {"messagesSent": 2})
    assert recovery.run_replay(body["id"]) == 0  # a redelivered task sends nothing twice
    assert len(manual_deliveries(ep)) == 2


def test_replay_missing_honours_channels_until_and_deliver_at(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    ep = add_endpoint(application, uid="chan", channels=["c1"])
    later = utcnow() + timedelta(hours=2)
    wanted = add_message(application, ago=500, channels=["c1", "c2"], deliver_at=later)
    add_message(application, ago=400, channels=["c2"])
    add_message(application, ago=300)  # no channels: never reaches a channel-filtered endpoint
    add_message(application, ago=10, channels=["c1"])  # after `until`
    until = (utcnow() - timedelta(seconds=60)).isoformat()
    response = client.post(
        "/api/v1/app/shop/endpoint/chan/replay-missing",
        json={"since": since(), "until": until},
        headers=auth_headers,
    )
    assert recovery.run_replay(response.get_json()["id"]) == 1
    [delivery] = manual_deliveries(ep)
    assert delivery.msg_id == wanted.id and delivery.next_attempt_at == later


def test_replay_missing_runs_in_batches_and_a_rerun_goes_on(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recovery, "REPLAY_BATCH", 2)
    ep = add_endpoint(application, uid="many")
    messages = [add_message(application, ago=500 - i) for i in range(5)]
    task_id = client.post(
        "/api/v1/app/shop/endpoint/many/replay-missing",
        json={"since": since()},
        headers=auth_headers,
    ).get_json()["id"]
    task = background_tasks.lock_running(task_id)
    assert task is not None and recovery._replay_batch(task) is False  # a worker that then died
    db.session.commit()
    assert [d.msg_id for d in manual_deliveries(ep)] == [m.id for m in messages[:2]]
    progress = db.session.get(BackgroundTask, task_id)
    assert progress.status == "running" and progress.data["after"] == messages[1].id
    assert recovery.run_replay(task_id) == 3  # the rerun goes on after the first batch
    assert [d.msg_id for d in manual_deliveries(ep)] == [m.id for m in messages]
    done = get(client, auth_headers, f"background-task/{task_id}").get_json()
    assert (done["status"], done["data"]) == ("finished", {"messagesSent": 5})


def test_replay_missing_to_disabled_endpoint_finishes_sending_nothing(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    ep = add_endpoint(application, uid="off", disabled=True)
    add_message(application, ago=100)
    task_id = client.post(
        "/api/v1/app/shop/endpoint/off/replay-missing",
        json={"since": since()},
        headers=auth_headers,
    ).get_json()["id"]
    assert recovery.run_replay(task_id) == 0 and manual_deliveries(ep) == []
    assert db.session.get(BackgroundTask, task_id).status == "finished"


def test_replay_missing_needs_since_and_a_known_endpoint(
    client: FlaskClient, auth_headers: Headers, endpoint: Endpoint
) -> None:
    url = "/api/v1/app/shop/endpoint/{}/replay-missing"
    bad = client.post(url.format("ep-a"), json={}, headers=auth_headers)
    assert bad.status_code == 422 and bad.get_json()["detail"][0]["loc"] == ["body", "since"]
    missing = client.post(url.format("nope"), json={"since": since()}, headers=auth_headers)
    assert missing.status_code == 404


def test_resume_stale_tasks_reenqueues_replays_and_purges_with_their_worker_task(
    org_id: str,
) -> None:
    with freeze_time(utcnow() - timedelta(minutes=10)):
        replay = add_task(org_id, task="endpoint.replay")
        purge = add_task(org_id, task="application.purge_content")
    resumed = recovery.resume_stale_recoveries()
    assert {replay.id, purge.id} <= set(resumed)
    queued = [json.loads(raw)["headers"] for raw in get_redis().lrange("herald", 0, -1)]
    by_id = {h["argsrepr"].strip("()',"): h["task"] for h in queued}
    assert by_id[replay.id] == recovery.REPLAY_TASK
    assert by_id[purge.id] == background_tasks.PURGE_TASK


@pytest.mark.postgresql_only
def test_resume_skips_a_task_whose_worker_holds_it(app: Flask, committed_db: None) -> None:
    with app.app_context():
        org = Organization(name="lock-org")
        db.session.add(org)
        db.session.commit()
        with freeze_time(utcnow() - timedelta(minutes=10)):
            task_id = add_task(org.id, task="application.purge_content").id
        with db.engine.connect() as worker:  # a long purge holds the task's row lock
            worker.execute(
                text("SELECT id FROM background_task WHERE id = :id FOR UPDATE"), {"id": task_id}
            )
            db.session.execute(text("SET LOCAL lock_timeout = '2s'"))  # fail, don't hang
            assert task_id not in recovery.resume_stale_recoveries()  # skipped, not awaited
            worker.rollback()
        assert task_id in recovery.resume_stale_recoveries()


# -- GET .../attempt/endpoint/{endpoint_id}/count -----------------------------------------------


def test_count_attempts_by_endpoint_applies_the_list_filters(
    client: FlaskClient,
    auth_headers: Headers,
    history: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = "app/shop/attempt/endpoint/ep-a/count"
    assert get(client, auth_headers, path).get_json() == {"count": 3, "approximated": False}
    assert get(client, auth_headers, path, status=2).get_json()["count"] == 2
    assert get(client, auth_headers, path, status_code_class=500).get_json()["count"] == 1
    assert get(client, auth_headers, path, channel="c1").get_json()["count"] == 1
    assert get(client, auth_headers, path, event_types="user.signup").get_json()["count"] == 2
    monkeypatch.setattr("api.services.attempts.COUNT_CEILING", 2)
    assert get(client, auth_headers, path).get_json() == {"count": 2, "approximated": True}
    assert get(client, auth_headers, "app/shop/attempt/endpoint/nope/count").status_code == 404


# -- GET /app/{app_id}/stats/attempts -----------------------------------------------------------


def test_app_attempt_stats_count_per_event_type(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    endpoint: Endpoint,
    history: dict[str, Any],
) -> None:
    dropped = add_message(application, ago=50, event_type="order.paid")
    add_delivery(dropped, endpoint, MessageStatus.CANCELED)
    old = add_delivery(add_message(application, ago=40), endpoint, MessageStatus.SUCCESS)
    add_attempt(old, MessageStatus.SUCCESS, ago=7200)  # before `since`
    window = {"since": since(), "until": utcnow().isoformat()}
    body = get(client, auth_headers, "app/shop/stats/attempts", **window).get_json()
    assert body["by_event_type"] == {
        "user.signup": {"success": 1, "failure": 1, "canceled": 0},
        "order.paid": {"success": 0, "failure": 1, "canceled": 1},
    }
    totals = (body["total_success"], body["total_failure"], body["total_canceled"])
    assert totals == (1, 2, 1) and body["since"].endswith("Z")
    only = get(
        client, auth_headers, "app/shop/stats/attempts", event_types="order.paid", **window
    ).get_json()
    assert list(only["by_event_type"]) == ["order.paid"] and only["total_success"] == 0


def test_app_attempt_stats_need_a_window_of_at_most_28_days(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    missing = get(client, auth_headers, "app/shop/stats/attempts", since=since())
    assert missing.status_code == 422 and missing.get_json()["detail"][0]["loc"] == [
        "query",
        "until",
    ]
    too_long = get(
        client, auth_headers, "app/shop/stats/attempts", since=since(24 * 40), until=since(0)
    )
    assert (too_long.status_code, too_long.get_json()["code"]) == (400, "invalid_range")
    window = {"since": since(), "until": since(0)}
    assert get(client, auth_headers, "app/nope/stats/attempts", **window).status_code == 404


# -- POST .../msg/precheck/active ---------------------------------------------------------------


def precheck(client: FlaskClient, headers: Headers, **body: Any) -> Any:
    """POST a precheck for app `shop`."""
    return client.post("/api/v1/app/shop/msg/precheck/active", json=body, headers=headers)


def test_precheck_says_whether_an_enabled_endpoint_would_get_the_message(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    assert precheck(client, auth_headers, eventType="a.b").get_json() == {"active": False}
    add_endpoint(application, disabled=True)
    add_endpoint(application, event_types=["user.signup"])
    add_endpoint(application, channels=["c1"])
    assert precheck(client, auth_headers, eventType="user.signup").get_json()["active"] is True
    assert precheck(client, auth_headers, eventType="a.b").get_json()["active"] is False
    assert precheck(client, auth_headers, eventType="a.b", channels=["c1"]).get_json()["active"]
    bad = precheck(client, auth_headers, channels=["c1"])
    assert bad.status_code == 422 and bad.get_json()["detail"][0]["loc"] == ["body", "eventType"]
    unknown = client.post(
        "/api/v1/app/nope/msg/precheck/active", json={"eventType": "a"}, headers=auth_headers
    )
    assert unknown.status_code == 404


# -- POST .../msg/bulk-expunge, POST .../msg/expunge-all-contents -------------------------------


def test_bulk_expunge_deletes_the_named_payloads_by_id_or_event_id(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    by_id, by_event_id, kept = (
        add_message(application),
        add_message(application, event_id="evt-9"),
        add_message(application),
    )
    theirs = add_message(other_org_app())
    response = client.post(
        "/api/v1/app/shop/msg/bulk-expunge",
        json={"ids": [by_id.id, "evt-9", "evt-none", theirs.id]},
        headers=auth_headers,
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "results": {
            by_id.id: "expunged",
            "evt-9": "expunged",
            "evt-none": "not-found",
            theirs.id: "not-found",
        }
    }
    for message in (by_id, by_event_id):
        read = get(client, auth_headers, f"app/shop/msg/{message.id}").get_json()
        assert read["payload"] == {"expired": True}
    assert db.session.get(Message, kept.id).payload == '{"a":1}'
    assert db.session.get(Message, theirs.id).payload == '{"a":1}'
    empty = client.post("/api/v1/app/shop/msg/bulk-expunge", json={}, headers=auth_headers)
    assert empty.get_json() == {"results": {}}


def test_expunge_all_contents_purges_the_apps_payloads_in_a_task(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    mine = [add_message(application), add_message(application), add_message(application)]
    db.session.get(Message, mine[0].id).payload = None  # already gone: not counted
    db.session.commit()
    theirs = add_message(other_org_app())
    response = client.post("/api/v1/app/shop/msg/expunge-all-contents", headers=auth_headers)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["task"]) == ("running", "application.purge_content")
    assert background_tasks.run_purge_content(body["id"]) == 2
    assert all(db.session.get(Message, m.id).payload is None for m in mine)
    assert db.session.get(Message, theirs.id).payload is not None
    task = get(client, auth_headers, f"background-task/{body['id']}").get_json()
    assert (task["status"], task["data"]) == ("finished", {"messagesPurged": 2})
    assert background_tasks.run_purge_content(body["id"]) == 0
    unknown = client.post("/api/v1/app/nope/msg/expunge-all-contents", headers=auth_headers)
    assert unknown.status_code == 404


# -- expanded_statuses --------------------------------------------------------------------------


@pytest.fixture
def canceled(application: Application, endpoint: Endpoint) -> dict[str, Any]:
    """A message whose delivery was canceled, with an attempt logged as Canceled (4)."""
    message = add_message(application, ago=100, event_id="evt-c")
    delivery = add_delivery(message, endpoint, MessageStatus.CANCELED)
    return {"msg": message, "attempt": add_attempt(delivery, MessageStatus.CANCELED, 0, ago=50)}


@pytest.mark.parametrize(
    ("expanded", "shown"),
    [(None, (0, "success")), ("false", (0, "success")), ("true", (4, "canceled"))],
)
def test_expanded_statuses_shows_canceled_only_when_true(
    client: FlaskClient,
    auth_headers: Headers,
    canceled: dict[str, Any],
    expanded: str | None,
    shown: tuple[int, str],
) -> None:
    params = {} if expanded is None else {"expanded_statuses": expanded}
    attempt_id = canceled["attempt"].id
    for path in ("app/shop/attempt/msg/evt-c", "app/shop/attempt/endpoint/ep-a"):
        item = get(client, auth_headers, path, **params).get_json()["data"][0]
        assert (item["id"], item["status"], item["statusText"]) == (attempt_id, *shown)
    one = get(client, auth_headers, f"app/shop/msg/evt-c/attempt/{attempt_id}", **params)
    assert (one.get_json()["status"], one.get_json()["statusText"]) == shown
    message = get(client, auth_headers, "app/shop/endpoint/ep-a/msg", **params).get_json()
    assert (message["data"][0]["status"], message["data"][0]["statusText"]) == shown
    # the destinations list has no such parameter: it always shows the stored status
    where = get(client, auth_headers, "app/shop/msg/evt-c/endpoint").get_json()["data"][0]
    assert (where["status"], where["statusText"]) == (4, "canceled")
