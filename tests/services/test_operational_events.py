"""Operational webhooks, the sending side: each event is a message of the org's internal
application with Svix's payload shape; no loops; an emission failure breaks nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import select, text

from api.errors import Conflict
from api.extensions import db
from api.models import Application, BackgroundTask, Delivery, Endpoint, Message, MessageAttempt
from api.services import background_tasks, endpoints, operational_events, operational_webhooks
from api.services.delivery.http_client import Outcome
from api.services.delivery.record import record_results
from api.services.delivery.send import Result
from serializers.endpoints import EndpointIn, EndpointPatch
from serializers.operational_webhooks import OperationalWebhookEndpointIn
from tests.api.factories import leased_job, seed
from tests.support import SVIX_EVENT_SCHEMAS, svix_event_errors, svix_event_schemas

SPEC = Path(__file__).resolve().parents[3] / "shared" / "svix" / "openapi-cloud.json"


def subscribe(org_id: str, **fields: Any) -> Endpoint:
    """An operational-webhook endpoint of the org (its internal application created)."""
    data = OperationalWebhookEndpointIn().load({"url": "https://ops.example.com/", **fields})
    return operational_webhooks.create_operational_endpoint(org_id, data)


def events(org_id: str) -> list[dict[str, Any]]:
    """The operational events stored for the org, oldest first; each checked against Svix's
    schema of its type."""
    app_id = operational_events.find_internal_app_id(org_id)
    rows = db.session.scalars(
        select(Message).where(Message.app_id == app_id).order_by(Message.created_at, Message.id)
    ).all()
    bodies = [json.loads(row.payload) for row in rows]
    for row, body in zip(rows, bodies, strict=True):
        assert row.event_type == body["type"]
        assert svix_event_errors(body) == [], body
    return bodies


@pytest.fixture
def delivery(db_session: object) -> Delivery:
    """A leased-to-be delivery of a fresh org that has an operational-webhook endpoint."""
    d = seed("http://127.0.0.1:9/")
    subscribe(org_of(d))
    return d


def org_of(d: Delivery) -> str:
    app = db.session.get(Application, d.app_id)
    assert app is not None
    return app.org_id


def record(d: Delivery, outcome: Outcome, attempts: int, now: datetime | None = None) -> str:
    [label] = record_results([Result(leased_job(d, attempts), outcome)], now)
    return label


@pytest.mark.skipif(not SPEC.exists(), reason="the Svix spec is not beside the checkout")
def test_vendored_event_schemas_are_the_specs() -> None:
    fresh = svix_event_schemas(json.loads(SPEC.read_text()))
    assert json.loads(SVIX_EVENT_SCHEMAS.read_text()) == fresh


def test_svix_event_errors_refuses_a_wrong_payload() -> None:
    assert svix_event_errors({"type": "endpoint.created", "data": {"appId": "app_x"}}) != []


def test_emit_endpoint_lifecycle_events(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    subscribe(org_id)
    app = db.session.get(Application, d.app_id)
    assert app is not None
    created = endpoints.create_endpoint(
        org_id, app.id, EndpointIn().load({"url": "https://a.example.com/", "uid": "e1"})
    )
    ep_id = created.id
    endpoints.patch_endpoint(org_id, app.id, ep_id, EndpointPatch().load({"disabled": True}))
    endpoints.patch_endpoint(org_id, app.id, ep_id, EndpointPatch().load({"disabled": False}))
    endpoints.patch_endpoint(org_id, app.id, ep_id, EndpointPatch().load({"description": "x"}))
    endpoints.delete_endpoint(org_id, app.id, ep_id)
    got = events(org_id)
    assert [e["type"] for e in got] == [
        "endpoint.created",
        "endpoint.updated",
        "endpoint.disabled",
        "endpoint.updated",
        "endpoint.enabled",
        "endpoint.updated",
        "endpoint.deleted",
    ]
    assert got[0]["data"] == {
        "appId": app.id,
        "appUid": None,
        "endpointId": ep_id,
        "endpointUid": "e1",
    }
    assert got[2]["data"]["trigger"] == "manual"
    assert got[-1]["data"]["endpointId"] == ep_id


def test_emit_nothing_about_operational_endpoints_themselves(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    ops = subscribe(org_id, uid="ops")
    data = OperationalWebhookEndpointIn().load(
        {"url": "https://other.example.com/", "disabled": True}
    )
    operational_webhooks.upsert_operational_endpoint(org_id, "ops", data)
    operational_webhooks.delete_operational_endpoint(org_id, ops.id)
    assert events(org_id) == []


def test_emit_nothing_before_the_org_has_an_operational_endpoint(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    endpoints.create_endpoint(
        org_id, d.app_id, EndpointIn().load({"url": "https://a.example.com/"})
    )
    assert operational_events.find_internal_app_id(org_id) is None
    assert (
        db.session.scalar(
            select(Message).where(Message.org_id == org_id, Message.app_id != d.app_id)
        )
        is None
    )


def test_emit_failure_never_breaks_the_api_call(
    db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    subscribe(org_id)

    def broken(*args: object, **kwargs: object) -> None:
        db.session.execute(text("SELECT * FROM no_such_table"))  # a failing statement

    monkeypatch.setattr(operational_events, "stage_message", broken)
    made = endpoints.create_endpoint(
        org_id, d.app_id, EndpointIn().load({"url": "https://a.example.com/"})
    )
    db.session.expire_all()
    assert db.session.get(Endpoint, made.id) is not None  # only the savepoint rolled back
    assert events(org_id) == []


def test_an_event_commits_with_its_change_or_not_at_all(db_session: object) -> None:
    """Staged in the change's transaction: a change that is rolled back leaves no event
    (here a uid another endpoint holds, found at the flush), a committed one has its event."""
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    subscribe(org_id)
    endpoints.create_endpoint(
        org_id, d.app_id, EndpointIn().load({"url": "https://a.example.com/", "uid": "taken"})
    )
    assert [e["type"] for e in events(org_id)] == ["endpoint.created"]
    with pytest.raises(Conflict):
        endpoints.create_endpoint(
            org_id, d.app_id, EndpointIn().load({"url": "https://b.example.com/", "uid": "taken"})
        )
    assert [e["type"] for e in events(org_id)] == ["endpoint.created"]


def test_record_emits_failing_on_the_fourth_failure(delivery: Delivery) -> None:
    org_id, d_id = org_of(delivery), delivery.id
    assert record(delivery, Outcome(500, "no", 1), attempts=2) == "retry"
    assert events(org_id) == []
    assert record(delivery, Outcome(503, "no", 1), attempts=3) == "retry"
    [event] = events(org_id)
    attempt = db.session.scalars(
        select(MessageAttempt)
        .where(MessageAttempt.delivery_id == d_id)
        .order_by(MessageAttempt.id.desc())
    ).first()
    assert attempt is not None
    assert event["type"] == "message.attempt.failing"
    assert event["data"]["msgId"] == delivery.msg_id and event["data"]["msgEventId"] is None
    assert event["data"]["endpointId"] == delivery.endpoint_id
    assert event["data"]["lastAttempt"]["id"] == attempt.id
    assert event["data"]["lastAttempt"]["responseStatusCode"] == 503


def test_record_emits_recovered_after_failing(delivery: Delivery) -> None:
    org_id = org_of(delivery)
    assert record(delivery, Outcome(200, "ok", 1), attempts=4) == "success"
    [event] = events(org_id)
    assert event["type"] == "message.attempt.recovered"
    assert event["data"]["lastAttempt"]["responseStatusCode"] == 200


def test_record_success_without_earlier_failing_emits_nothing(delivery: Delivery) -> None:
    org_id = org_of(delivery)
    assert record(delivery, Outcome(200, "ok", 1), attempts=2) == "success"
    assert events(org_id) == []


def test_record_exhausted_within_the_window_emits_exhausted_only(
    app: Flask, delivery: Delivery
) -> None:
    org_id = org_of(delivery)
    last = len(app.config["RETRY_SCHEDULE"])
    assert record(delivery, Outcome(500, "", 1), attempts=last) == "failed"
    assert [e["type"] for e in events(org_id)] == ["message.attempt.exhausted"]
    endpoint = db.session.get(Endpoint, delivery.endpoint_id)
    assert endpoint is not None and endpoint.disabled is False


def test_record_exhausted_after_the_window_disables_the_endpoint(
    app: Flask, delivery: Delivery
) -> None:
    org_id, endpoint_id = org_of(delivery), delivery.endpoint_id
    now = datetime(2026, 6, 1, tzinfo=UTC)
    since = now - timedelta(seconds=app.config["ENDPOINT_DISABLE_AFTER"] + 1)
    endpoint = db.session.get(Endpoint, endpoint_id)
    assert endpoint is not None
    endpoint.first_failure_at = since
    db.session.commit()
    last = len(app.config["RETRY_SCHEDULE"])
    with freeze_time(now):
        assert record(delivery, Outcome(500, "", 1), last, now) == "failed"
    db.session.expire_all()
    assert db.session.get(Endpoint, endpoint_id).disabled is True  # type: ignore[union-attr]
    got = {e["type"]: e for e in events(org_id)}  # ids of one frozen instant: any order
    assert sorted(got) == ["endpoint.disabled", "message.attempt.exhausted"]
    exhausted, disabled = got["message.attempt.exhausted"], got["endpoint.disabled"]
    assert exhausted["data"]["lastAttempt"]["timestamp"] == "2026-06-01T00:00:00Z"
    assert disabled["type"] == "endpoint.disabled"
    assert disabled["data"]["trigger"] == "automatic"
    assert disabled["data"]["failSince"] == since.isoformat().replace("+00:00", "Z")
    assert disabled["data"]["endpointId"] == endpoint_id


def test_record_failure_after_the_window_without_exhaustion_keeps_the_endpoint(
    app: Flask, delivery: Delivery
) -> None:
    endpoint_id = delivery.endpoint_id
    endpoint = db.session.get(Endpoint, endpoint_id)
    assert endpoint is not None
    endpoint.first_failure_at = datetime.now(UTC) - timedelta(days=30)
    db.session.commit()
    assert record(delivery, Outcome(500, "", 1), attempts=1) == "retry"
    db.session.expire_all()
    assert db.session.get(Endpoint, endpoint_id).disabled is False  # type: ignore[union-attr]


def test_record_internal_deliveries_emit_nothing(app: Flask, db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    ops = subscribe(org_id)
    endpoints.create_endpoint(
        org_id, d.app_id, EndpointIn().load({"url": "https://a.example.com/"})
    )
    [created] = events(org_id)
    internal = db.session.scalar(select(Delivery).where(Delivery.endpoint_id == ops.id))
    assert internal is not None
    last = len(app.config["RETRY_SCHEDULE"])
    assert record(internal, Outcome(500, "", 1), attempts=last) == "failed"
    assert record(internal_again(ops, created), Outcome(500, "", 1), attempts=3) != "stale"
    assert [e["type"] for e in events(org_id)] == ["endpoint.created"]


def internal_again(ops: Endpoint, event: dict[str, Any]) -> Delivery:
    """One more delivery of the operational message to the operational endpoint."""
    from api.services.delivery import outbox

    message = db.session.scalar(select(Message).where(Message.app_id == ops.app_id))
    assert message is not None
    delivery = outbox.add_delivery(message, ops, 0)
    db.session.commit()
    return delivery


def test_reenabling_clears_the_failure_clock_but_an_update_does_not(db_session: object) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    d = seed("http://127.0.0.1:9/", first_failure_at=since)
    org_id, ep_id = org_of(d), d.endpoint_id
    endpoints.patch_endpoint(org_id, d.app_id, ep_id, EndpointPatch().load({"disabled": False}))
    assert db.session.get(Endpoint, ep_id).first_failure_at == since  # type: ignore[union-attr]
    endpoints.patch_endpoint(org_id, d.app_id, ep_id, EndpointPatch().load({"disabled": True}))
    endpoints.patch_endpoint(org_id, d.app_id, ep_id, EndpointPatch().load({"disabled": False}))
    assert db.session.get(Endpoint, ep_id).first_failure_at is None  # type: ignore[union-attr]


def test_emit_background_task_finished(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    subscribe(org_id)
    task = BackgroundTask(
        org_id=org_id, task=background_tasks.PURGE_TYPE, status="running", data={"appId": d.app_id}
    )
    db.session.add(task)
    db.session.commit()
    background_tasks.run_purge_content(task.id)
    [event] = events(org_id)
    assert event["type"] == "background_task.finished"
    assert event["data"]["taskId"] == task.id and event["data"]["status"] == "finished"
    assert event["data"]["task"] == "application.purge_content"


def test_the_event_is_in_the_transaction_that_commits_its_change(
    db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No moment where the change is committed and its event is not (a crash there would
    lose the event): when the change's commit starts, its event is already staged."""
    d = seed("http://127.0.0.1:9/")
    org_id = org_of(d)
    subscribe(org_id)
    staged_at_commit: list[list[str]] = []
    commit = db.session.commit

    def watched_commit() -> None:
        staged_at_commit.append([e["type"] for e in events(org_id)])
        commit()

    monkeypatch.setattr(db.session, "commit", watched_commit)
    made = endpoints.create_endpoint(
        org_id, d.app_id, EndpointIn().load({"url": "https://a.example.com/"})
    )
    endpoints.delete_endpoint(org_id, d.app_id, made.id)
    assert staged_at_commit == [["endpoint.created"], ["endpoint.created", "endpoint.deleted"]]
