"""The unmodified svix SDK drives the messages API of a live Herald."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from svix.api import (
    ApplicationIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    Svix,
)
from svix.exceptions import HttpError

from api.extensions import db
from api.models import Application, Endpoint, Message
from tests.support import Receiver

APP = "sdk-shop"


@pytest.fixture
def shop(sdk: Svix) -> str:
    """The app `sdk-shop`, created by the first message (MessageIn.application)."""
    sdk.message.create(
        APP,
        MessageIn(
            event_type="app.bootstrap", payload={}, application=ApplicationIn(name="Shop", uid=APP)
        ),
    )
    return APP


def send(sdk: Svix, event_type: str = "order.paid", **fields: object) -> str:
    """Create a message and return its id."""
    return sdk.message.create(APP, MessageIn(event_type=event_type, payload={"n": 1}, **fields)).id


def test_create_message_auto_creates_application(app: Flask, sdk: Svix) -> None:
    out = sdk.message.create(
        "new-shop",
        MessageIn(
            event_type="user.signup",
            payload={"user": "zoë"},
            application=ApplicationIn(name="New shop", uid="new-shop"),
        ),
        MessageCreateOptions(with_content=True),
    )
    assert out.id.startswith("msg_") and out.payload == {"user": "zoë"}
    with app.app_context():
        assert db.session.scalar(select(Application.name).where(Application.uid == "new-shop"))
        db.session.remove()


def test_create_message_unknown_app_raises_404(sdk: Svix) -> None:
    with pytest.raises(HttpError) as error:
        sdk.message.create("missing", MessageIn(event_type="x", payload={}))
    assert (error.value.status_code, error.value.detail) == (404, "Application not found")


def test_create_message_payload_follows_with_content(sdk: Svix, shop: str) -> None:
    plain = sdk.message.create(shop, MessageIn(event_type="a", payload={"k": [1, 2]}))
    full = sdk.message.create(
        shop,
        MessageIn(event_type="a", payload={"k": [1, 2]}),
        MessageCreateOptions(with_content=True),
    )
    assert plain.payload == {} and full.payload == {"k": [1, 2]}


def test_create_message_duplicate_event_id_raises_409(sdk: Svix, shop: str) -> None:
    send(sdk, event_id="order-1")
    with pytest.raises(HttpError) as error:
        send(sdk, event_id="order-1")
    assert error.value.status_code == 409


def test_get_message_by_id_and_event_id(sdk: Svix, shop: str) -> None:
    msg_id = send(sdk, event_id="order-2", channels=["eu"], tags=["vip"])
    by_id = sdk.message.get(shop, msg_id, MessageGetOptions(with_content=True))
    by_event = sdk.message.get(shop, "order-2")
    assert by_id.payload == {"n": 1} and by_event.payload == {}
    assert by_event.id == msg_id and by_event.event_id == "order-2"
    assert by_id.channels == ["eu"] and by_id.tags == ["vip"]


def test_list_messages_filters_and_paginates(sdk: Svix, shop: str) -> None:
    paid = [send(sdk, "order.paid", channels=["eu"]) for _ in range(3)]
    send(sdk, "order.refunded")
    by_type = sdk.message.list(shop, MessageListOptions(event_types=["order.paid"]))
    assert sorted(m.id for m in by_type.data) == sorted(paid)
    by_channel = sdk.message.list(shop, MessageListOptions(channel="eu"))
    assert len(by_channel.data) == 3
    seen, iterator = [], None
    while True:
        page = sdk.message.list(shop, MessageListOptions(limit=2, iterator=iterator))
        seen += [m.id for m in page.data]
        iterator = page.iterator
        if page.done:
            break
    assert len(seen) == len(set(seen)) == 5  # 4 plus the bootstrap message
    future = datetime.now(UTC) + timedelta(hours=1)
    assert sdk.message.list(shop, MessageListOptions(after=future)).data == []
    assert len(sdk.message.list(shop, MessageListOptions(before=future)).data) == 5


def test_expunge_content_reads_as_expired(sdk: Svix, shop: str) -> None:
    msg_id = send(sdk)
    sdk.message.expunge_content(shop, msg_id)
    out = sdk.message.get(shop, msg_id, MessageGetOptions(with_content=True))
    assert out.payload == {"expired": True}


def test_create_message_same_idempotency_key_returns_same_message(
    app: Flask, sdk: Svix, shop: str
) -> None:
    options = MessageCreateOptions(idempotency_key="order-3-attempt")
    first = sdk.message.create(shop, MessageIn(event_type="order.paid", payload={}), options)
    again = sdk.message.create(shop, MessageIn(event_type="order.paid", payload={}), options)
    other = sdk.message.create(
        shop,
        MessageIn(event_type="order.paid", payload={}),
        MessageCreateOptions(idempotency_key="order-4-attempt"),
    )
    assert first.id == again.id != other.id
    with app.app_context():
        assert db.session.query(Message).filter_by(event_type="order.paid").count() == 2
        db.session.remove()


def test_create_message_is_delivered_with_the_exact_stored_body(
    app: Flask, sdk: Svix, shop: str, receiver: Receiver, celery_worker: object
) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with app.app_context():
        app_id = db.session.scalar(select(Application.id).where(Application.uid == shop))
        db.session.add(
            Endpoint(app_id=app_id, url=receiver.url, secret=secret, event_types=["order.paid"])
        )
        db.session.commit()
        db.session.remove()
    payload = {"amount": 12.5, "currency": "€", "items": [{"sku": "a"}]}
    msg_id = sdk.message.create(shop, MessageIn(event_type="order.paid", payload=payload)).id
    send(sdk, "order.refunded")  # filtered out by the endpoint's eventTypes
    (received,) = receiver.wait_for(1)
    assert received.body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert received.headers["svix-id"] == msg_id
