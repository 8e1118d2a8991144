"""Attempts API, sending again: resend one message to an endpoint, recover an endpoint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import db
from api.models import (
    Application,
    BackgroundTask,
    Delivery,
    Endpoint,
    MessageStatus,
    TriggerType,
)
from api.models.common import utcnow
from tests.api import attempts_support
from tests.api.attempts_support import Headers
from tests.api.factories import add_endpoint, add_message

# Shared fixtures, bound here so pytest finds them for this module's tests.
endpoint = attempts_support.endpoint
enqueued = attempts_support.enqueued
history = attempts_support.history


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
    assert manual[0].lease_token is None and manual[0].next_attempt_at is not None  # due now
    assert enqueued == [("herald.pump",)]


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
