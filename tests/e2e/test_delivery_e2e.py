"""End to end: the svix SDK against the live server, a real Celery worker, a local receiver.

Every delivery is verified with both `svix` and `standardwebhooks`. Waits poll a condition
(the receiver, the attempt log, the endpoint) until a deadline sized for a loaded machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import standardwebhooks
from flask import Flask
from sqlalchemy import select
from svix.api import (
    ApplicationIn,
    EndpointHeadersIn,
    EndpointIn,
    EndpointSecretRotateIn,
    MessageIn,
    Svix,
)
from svix.webhooks import Webhook

from api.extensions import db
from api.models import MessageAttempt
from api.services.delivery.claim import dispatch_due
from tests.support import SLOW_MACHINE_TIMEOUT, Received, Receiver, eventually

pytestmark = pytest.mark.usefixtures("celery_worker")


@contextmanager
def dispatcher(app: Flask, interval: float = 0.1) -> Iterator[None]:
    """Run dispatch_due in a loop (what beat does every DISPATCH_INTERVAL s)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with app.app_context():
                dispatch_due()
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def verify(secret: str, got: Received) -> None:
    Webhook(secret).verify(got.body, got.headers)
    standardwebhooks.Webhook(secret).verify(got.body, got.headers)


def attempts_of(sdk: Svix, app_id: str, msg_id: str, count: int) -> list[Any] | None:
    """The message's attempts once at least `count` are recorded."""
    data = sdk.message_attempt.list_by_msg(app_id, msg_id).data
    return data if len(data) >= count else None


def endpoint_for(sdk: Svix, url: str, **fields: object) -> tuple[str, str, str]:
    """(app id, endpoint id, secret) for a new app with one endpoint."""
    app_out = sdk.application.create(ApplicationIn(name="e2e"))
    ep = sdk.endpoint.create(app_out.id, EndpointIn(url=url, **fields))  # type: ignore[arg-type]
    return app_out.id, ep.id, sdk.endpoint.get_secret(app_out.id, ep.id).key


def test_message_is_delivered_signed_with_custom_headers(sdk: Svix, receiver: Receiver) -> None:
    app_id, ep_id, secret = endpoint_for(sdk, receiver.url)
    sdk.endpoint.set_headers(app_id, ep_id, EndpointHeadersIn(headers={"X-Tenant": "acme"}))
    msg = sdk.message.create(
        app_id, MessageIn(event_type="user.created", payload={"name": "Zoë", "n": [1, 2.5]})
    )
    [got] = receiver.wait_for(1)
    verify(secret, got)
    assert got.headers["webhook-id"] == got.headers["svix-id"] == msg.id
    assert got.headers["x-tenant"] == "acme"
    assert got.headers["user-agent"].startswith("Herald-Webhooks/")
    [attempt] = eventually(lambda: sdk.message_attempt.list_by_msg(app_id, msg.id).data)
    assert attempt.response_status_code == 200 and attempt.status == 0


def test_rotation_grace_signs_with_both_keys(sdk: Svix, receiver: Receiver) -> None:
    app_id, ep_id, old = endpoint_for(sdk, receiver.url)
    sdk.endpoint.rotate_secret(app_id, ep_id, EndpointSecretRotateIn())
    new = sdk.endpoint.get_secret(app_id, ep_id).key
    assert new != old
    sdk.message.create(app_id, MessageIn(event_type="user.created", payload={"k": 1}))
    [got] = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split()) == 2
    verify(new, got)
    verify(old, got)


def test_failed_delivery_is_retried_on_schedule(
    app: Flask, sdk: Svix, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RETRY_SCHEDULE", [1, 1])
    app_id, _, secret = endpoint_for(sdk, receiver.url)
    receiver.statuses = [500, 500]  # then `status`, 200 (decided per request: no race)
    msg = sdk.message.create(app_id, MessageIn(event_type="user.created", payload={"r": 1}))
    with dispatcher(app):
        receiver.wait_for(3)
        attempts = eventually(lambda: attempts_of(sdk, app_id, msg.id, 3), what="3 attempts")
        got = list(receiver.requests)
    assert len(got) == 3
    for request in got:
        verify(secret, request)  # each retry is re-signed with its own timestamp
    stamps = [int(r.headers["webhook-timestamp"]) for r in got]
    assert stamps == sorted(stamps)
    assert sorted(a.response_status_code for a in attempts) == [200, 500, 500]


def test_throttle_rate_is_enforced(app: Flask, sdk: Svix, receiver: Receiver) -> None:
    rate, count = 4, 9
    app_id, _, secret = endpoint_for(sdk, receiver.url, throttle_rate=rate)
    with dispatcher(app):
        for i in range(count):
            sdk.message.create(app_id, MessageIn(event_type="user.created", payload={"i": i}))
        receiver.wait_for(count)
        time.sleep(0.3)  # room for an extra request (none may come)
    for request in receiver.requests:
        verify(secret, request)
    assert len(receiver.requests) == count
    times = [r.at for r in receiver.requests]  # recorded by the receiver as each arrived
    assert times[-1] - times[0] >= (count - 1) / rate - 0.05


def test_private_destination_is_refused(
    app: Flask, sdk: Svix, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WHITELIST_SUBNETS", [])
    app_id, _, _ = endpoint_for(sdk, receiver.url)
    msg = sdk.message.create(app_id, MessageIn(event_type="user.created", payload={"x": 1}))
    attempts = eventually(lambda: sdk.message_attempt.list_by_msg(app_id, msg.id).data)
    assert attempts and attempts[0].response_status_code == 0
    with app.app_context():
        stored = db.session.scalars(select(MessageAttempt.response)).all()
    assert any("loopback" in text and "refused" in text for text in stored)
    assert receiver.requests == []


def test_endpoint_is_auto_disabled_after_continuous_failure(
    app: Flask, sdk: Svix, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RETRY_SCHEDULE", [1, 1, 1, 1])
    monkeypatch.setitem(app.config, "ENDPOINT_DISABLE_AFTER", 1)
    receiver.status = 503
    app_id, ep_id, _ = endpoint_for(sdk, receiver.url)
    sdk.message.create(app_id, MessageIn(event_type="user.created", payload={"d": 1}))
    with dispatcher(app):
        deadline = time.monotonic() + SLOW_MACHINE_TIMEOUT
        while time.monotonic() < deadline and not sdk.endpoint.get(app_id, ep_id).disabled:
            time.sleep(0.2)
    assert sdk.endpoint.get(app_id, ep_id).disabled
    sent = len(receiver.requests)
    assert sent == 5  # Svix's rule: disabled when the message exhausts its 1 + 4 attempts
    sdk.message.create(app_id, MessageIn(event_type="user.created", payload={"d": 2}))
    time.sleep(1.0)
    assert len(receiver.requests) == sent  # a disabled endpoint receives nothing
