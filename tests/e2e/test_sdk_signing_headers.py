"""The official svix SDK on the live stack: Ed25519 (`whsk_`) endpoint secrets, a per-event-type
retry schedule and an attempt's headers.

svix 2.9.1 has no methods for the retry-schedule and attempt-headers operations (Svix marks them
x-internal): those two are called over HTTP with the same token, next to the SDK's own calls.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Flask
from svix.api import (
    ApplicationIn,
    EndpointHeadersIn,
    EndpointIn,
    EndpointSecretRotateIn,
    EventTypeIn,
    MessageIn,
    Svix,
)

from api.services.delivery.claim import dispatch_due
from api.services.delivery.signing import sign
from tests.support import Received, Receiver, eventually


def public_key(seed: bytes) -> bytes:
    """The raw Ed25519 public key of a seed (the `cryptography` package)."""
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


SEED, NEXT_SEED = bytes(range(32)), bytes(range(32, 64))
WHSK = "whsk_" + base64.b64encode(SEED + public_key(SEED)).decode()
NEXT_WHSK = "whsk_" + base64.b64encode(NEXT_SEED + public_key(NEXT_SEED)).decode()


def check_v1a(got: Received, public_keys: list[str], secrets: list[str]) -> None:
    """Each `v1a` entry, in order, is the signature of the received bytes by that key pair:
    verified with the `whpk_` key, and equal to the one
    (deterministic) Ed25519 signature of those bytes."""
    entries = got.headers["webhook-signature"].split()
    assert got.headers["svix-signature"] == got.headers["webhook-signature"]
    assert [e.split(",", 1)[0] for e in entries] == ["v1a"] * len(public_keys)
    msg_id, stamp = got.headers["webhook-id"], int(got.headers["webhook-timestamp"])
    content = f"{msg_id}.{stamp}.".encode() + got.body
    for entry, public, secret in zip(entries, public_keys, secrets, strict=True):
        assert entry == sign(msg_id, stamp, got.body, secret)
        raw = base64.b64decode(public.removeprefix("whpk_"))
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(entry[4:]), content)


def test_sdk_whsk_endpoint_is_signed_v1a_and_rotates_to_another_key_pair(
    sdk: Svix, receiver: Receiver, celery_worker: object
) -> None:
    app = sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    ep = sdk.endpoint.create(app.id, EndpointIn(url=receiver.url, uid="rx", secret=WHSK))
    public = sdk.endpoint.get_secret(app.id, ep.id).key
    assert public == "whpk_" + base64.b64encode(public_key(SEED)).decode()

    sdk.message.create("shop", MessageIn(event_type="user.signup", payload={"a": 1}))
    [first] = receiver.wait_for(1)
    check_v1a(first, [public], [WHSK])

    rotated = sdk.endpoint.rotate_secret("shop", "rx", EndpointSecretRotateIn(key=NEXT_WHSK))
    next_public = sdk.endpoint.get_secret("shop", "rx").key
    assert rotated.key == next_public and next_public.startswith("whpk_") and next_public != public
    sdk.message.create("shop", MessageIn(event_type="user.signup", payload={"a": 2}))
    second = receiver.wait_for(2)[1]
    check_v1a(second, [next_public, public], [NEXT_WHSK, WHSK])  # the old one in its grace


def test_sdk_message_follows_retry_schedule_and_attempt_headers_are_logged(
    app: Flask,
    sdk: Svix,
    receiver: Receiver,
    live_server: str,
    api_token: str,
    celery_worker: object,
) -> None:
    api = httpx.Client(
        base_url=f"{live_server}/api/v1", headers={"Authorization": f"Bearer {api_token}"}
    )
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    sdk.event_type.create(EventTypeIn(name="order.paid", description="An order was paid"))
    sdk.endpoint.create("shop", EndpointIn(url=receiver.url, uid="rx"))
    sdk.endpoint.set_headers("shop", "rx", EndpointHeadersIn(headers={"X-Api-Key": "k3y"}))
    schedule = {"retrySchedule": [{"secs": 1, "nanos": 0}]}
    response = api.put("/event-type/order.paid/retry-schedule", json=schedule)
    assert response.status_code == 200 and response.json() == schedule
    assert api.get("/event-type/order.paid/retry-schedule").json() == schedule

    receiver.statuses = [500]  # then 200: the retry succeeds
    msg = sdk.message.create("shop", MessageIn(event_type="order.paid", payload={"o": 1}))

    def both_attempts() -> list[Any] | None:
        with app.app_context():
            dispatch_due()  # what beat does: the 1 s retry is woken when due
        data = sdk.message_attempt.list_by_msg("shop", msg.id).data
        return data if len(data) >= 2 else None

    attempts = eventually(both_attempts, what="the retry")
    got = receiver.wait_for(2)
    gap = got[1].at - got[0].at
    assert 0.7 < gap < 4.0, gap  # 1 s +-20 % (and the dispatcher's wake-up), not the default 5 s
    assert [a.response_status_code for a in attempts] == [200, 500]  # newest first

    headers = api.get(f"/app/shop/msg/{msg.id}/attempt/{attempts[1].id}/headers").json()
    assert headers["sensitive"] == ["X-Api-Key"] and "X-Api-Key" not in headers["sentHeaders"]
    assert headers["sentHeaders"]["webhook-id"] == msg.id
    assert headers["sentHeaders"]["webhook-signature"] == got[0].headers["webhook-signature"]
    assert ["content-length", "2"] in headers["responseHeaders"]
