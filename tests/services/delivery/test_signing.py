"""Signing: both verifier libraries accept our headers; rotation signs with every live key."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from svix.webhooks import Webhook, WebhookVerificationError

from api.services.delivery.signing import live_keys, sign, webhook_headers

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OLD = "whsec_" + base64.b64encode(b"o" * 24).decode()
BODY = b'{"type":"user.created","data":{"name":"\xc3\xa9"}}'


def test_sign_matches_standardwebhooks_reference() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    reference = standardwebhooks.Webhook(SECRET).sign("msg_1", now, BODY.decode())
    assert sign("msg_1", int(now.timestamp()), BODY, SECRET) == reference


def test_webhook_headers_verify_with_both_libraries() -> None:
    ts = int(datetime.now(UTC).timestamp())
    headers = webhook_headers("msg_1", ts, BODY, [SECRET])
    assert headers["svix-id"] == headers["webhook-id"] == "msg_1"
    Webhook(SECRET).verify(BODY, headers)
    standardwebhooks.Webhook(SECRET).verify(BODY, headers)


def test_webhook_headers_reject_tampered_body() -> None:
    ts = int(datetime.now(UTC).timestamp())
    headers = webhook_headers("msg_1", ts, BODY, [SECRET])
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY + b" ", headers)


def test_live_keys_include_unexpired_old_keys_only() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = [
        {"key": OLD, "expiration": (now + timedelta(hours=1)).isoformat()},
        {"key": "whsec_expired", "expiration": (now - timedelta(seconds=1)).isoformat()},
    ]
    assert live_keys(SECRET, old, now) == [SECRET, OLD]


def test_signature_header_carries_one_entry_per_key_verifiable_by_each() -> None:
    ts = int(datetime.now(UTC).timestamp())
    headers = webhook_headers("msg_2", ts, BODY, [SECRET, OLD])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for key in (SECRET, OLD):
        Webhook(key).verify(BODY, headers)
        standardwebhooks.Webhook(key).verify(BODY, headers)
