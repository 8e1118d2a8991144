"""The unmodified svix SDK manages operational-webhook endpoints of a live Herald, and a real
Celery worker delivers the operational events, signed, to a real local receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest
import standardwebhooks
from flask import Flask
from svix.api import (
    ApplicationIn,
    EndpointIn,
    MessageIn,
    OperationalWebhookEndpointHeadersIn,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointSecretIn,
    OperationalWebhookEndpointUpsertIn,
    Svix,
)
from svix.exceptions import HttpError

from tests.support import Receiver, eventually, free_port, svix_event_errors


def events_of(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every request the receiver got, signature verified, as Svix events (schema checked)."""
    out = []
    for request in list(receiver.requests):
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
        body = json.loads(request.body)
        assert svix_event_errors(body) == [], body
        out.append(body)
    return out


def test_sdk_manages_operational_endpoints(sdk: Svix) -> None:
    ops = sdk.operational_webhook.endpoint
    made = ops.create(
        OperationalWebhookEndpointIn(
            url="https://ops.example.com/", uid="ops", event_types=["endpoint.disabled"]
        )
    )
    assert made.id.startswith("ep_") and made.event_types == ["endpoint.disabled"]
    assert [e.id for e in ops.list().data] == [made.id]
    assert ops.get("ops").id == made.id
    updated = ops.upsert(
        made.id, OperationalWebhookEndpointUpsertIn(url="https://new.example.com/")
    )
    assert updated.url == "https://new.example.com/" and updated.uid is None
    secret = ops.get_secret(made.id).key
    ops.rotate_secret(made.id, OperationalWebhookEndpointSecretIn())
    assert ops.get_secret(made.id).key not in ("", secret)
    ops.set_headers(made.id, OperationalWebhookEndpointHeadersIn(headers={"X-Team": "sre"}))
    assert ops.get_headers(made.id).headers == {"X-Team": "sre"}
    assert sdk.application.list().data == []  # the internal application stays hidden
    ops.delete(made.id)
    with pytest.raises(HttpError) as caught:
        ops.get(made.id)
    assert caught.value.status_code == 404


def test_operational_events_arrive_signed(
    app: Flask,
    sdk: Svix,
    receiver: Receiver,
    celery_worker: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "RETRY_SCHEDULE", [])  # the first failure is final
    monkeypatch.setitem(app.config, "ENDPOINT_DISABLE_AFTER", 0)  # disable on the next exhaustion
    ops = sdk.operational_webhook.endpoint.create(OperationalWebhookEndpointIn(url=receiver.url))
    secret = sdk.operational_webhook.endpoint.get_secret(ops.id).key
    shop = sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    endpoint = sdk.endpoint.create(shop.id, EndpointIn(url=dead, uid="dead"))
    created = eventually(lambda: events_of(receiver, secret), what="endpoint.created")
    assert created[0]["type"] == "endpoint.created"
    assert created[0]["data"] == {
        "appId": shop.id,
        "appUid": "shop",
        "endpointId": endpoint.id,
        "endpointUid": "dead",
    }

    def types() -> list[str]:
        return [e["type"] for e in events_of(receiver, secret)]

    msg = sdk.message.create("shop", MessageIn(event_type="order.paid", payload={}, event_id="o1"))
    eventually(lambda: "message.attempt.exhausted" in types(), what="the first exhaustion")
    sdk.message.create("shop", MessageIn(event_type="order.paid", payload={}))
    eventually(lambda: "endpoint.disabled" in types(), what="endpoint.disabled")
    got = events_of(receiver, secret)
    exhausted = next(e for e in got if e["type"] == "message.attempt.exhausted")
    assert exhausted["data"]["msgId"] == msg.id and exhausted["data"]["msgEventId"] == "o1"
    assert exhausted["data"]["lastAttempt"]["responseStatusCode"] == 0  # connection refused
    disabled = next(e for e in got if e["type"] == "endpoint.disabled")
    assert disabled["data"]["trigger"] == "automatic" and disabled["data"]["failSince"]
    assert sdk.endpoint.get("shop", endpoint.id).disabled is True
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == len(receiver.requests)
