"""Ed25519 (`whsk_`) endpoint secrets, per-event-type retry schedules and the attempt headers
route, through the HTTP API and real deliveries to a loopback receiver."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
import standardwebhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from api.extensions import db
from api.models import Application, Delivery, MessageAttempt, MessageStatus
from api.models.common import utcnow
from api.services.delivery.claim import claim_jobs
from api.services.delivery.pump import pump
from api.services.delivery.signing import sign
from tests.api import endpoints_support
from tests.api.endpoints_support import BASE, SECRET, Headers, post_endpoint, stored
from tests.api.factories import add_attempt, add_delivery, add_endpoint, add_message
from tests.support import Receiver, ScriptedReceiver

# Shared fixtures, bound here so pytest finds them for this module's tests.
application = endpoints_support.application


def public_key(seed: bytes) -> bytes:
    """The raw Ed25519 public key of a seed (the `cryptography` package)."""
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


SEED = bytes(range(32))
PUBLIC = public_key(SEED)
WHSK = "whsk_" + base64.b64encode(SEED + PUBLIC).decode()
WHPK = "whpk_" + base64.b64encode(PUBLIC).decode()
MSG = "/api/v1/app/shop/msg"


def deliver_due() -> list[str]:
    """Claim what is due and send it through this process's pump; the labels."""
    return pump().deliver(claim_jobs(64))


def send_message(client: FlaskClient, auth: Headers, event_type: str = "user.signup") -> str:
    response = client.post(MSG, json={"eventType": event_type, "payload": {"n": 1}}, headers=auth)
    assert response.status_code == 202, response.get_json()
    msg_id: str = response.get_json()["id"]
    return msg_id


def v1a_entries(signature_header: str) -> list[bytes]:
    return [base64.b64decode(e[4:]) for e in signature_header.split() if e.startswith("v1a,")]


def signed_content(got: Any) -> bytes:
    return f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body


def delivery_of(msg_id: str) -> Delivery:
    db.session.expire_all()
    row = db.session.scalar(select(Delivery).where(Delivery.msg_id == msg_id))
    assert row is not None
    return row


def attempts_for(msg_id: str) -> list[MessageAttempt]:
    db.session.expire_all()
    query = select(MessageAttempt).where(MessageAttempt.msg_id == msg_id)
    return list(db.session.scalars(query.order_by(MessageAttempt.id)))


# --- Ed25519 secrets ----------------------------------------------------------------------


def test_create_endpoint_with_whsk_secret_exposes_only_public_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="ed", secret=WHSK)
    assert created.status_code == 201, created.get_json()
    assert WHSK not in created.get_data(as_text=True)
    response = client.get(f"{BASE}/ed/secret", headers=auth_headers)
    assert response.status_code == 200 and response.get_json() == {"key": WHPK}
    assert stored(created.get_json()["id"]).secret == WHSK


def test_create_endpoint_with_whsk_seed_stores_seed_and_public_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    seed_only = "whsk_" + base64.b64encode(SEED).decode()
    created = post_endpoint(client, auth_headers, uid="ed", secret=seed_only)
    assert created.status_code == 201, created.get_json()
    assert stored(created.get_json()["id"]).secret == WHSK
    assert client.get(f"{BASE}/ed/secret", headers=auth_headers).get_json() == {"key": WHPK}


@pytest.mark.parametrize(
    "secret",
    [
        "whsk_" + base64.b64encode(SEED + bytes(32)).decode(),  # not the seed's public key
        "whsk_" + base64.b64encode(bytes(48)).decode(),  # neither 32 nor 64 bytes
        WHPK,  # a public key cannot sign
        "whsk1_" + base64.b64encode(SEED + PUBLIC).decode(),
    ],
)
def test_create_endpoint_with_invalid_ed25519_secret_returns_422(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], secret: str
) -> None:
    response = post_endpoint(client, auth_headers, secret=secret)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "secret"]


def test_rotate_to_whsk_key_returns_public_key_and_keeps_hmac_key_for_grace(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="ed", secret=SECRET).get_json()
    response = client.post(f"{BASE}/ed/secret/rotate", json={"key": WHSK}, headers=auth_headers)
    assert response.status_code == 200 and response.get_json() == {"key": WHPK}
    row = stored(created["id"])
    assert row.secret == WHSK and [k["key"] for k in row.old_keys] == [SECRET]


def test_rotate_whsk_endpoint_without_key_generates_a_new_ed25519_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="ed", secret=WHSK).get_json()
    response = client.post(f"{BASE}/ed/secret/rotate", json={}, headers=auth_headers)
    new_public = response.get_json()["key"]
    assert new_public.startswith("whpk_") and new_public != WHPK
    row = stored(created["id"])
    raw = base64.b64decode(row.secret.removeprefix("whsk_"))
    assert row.secret.startswith("whsk_") and len(raw) == 64
    assert public_key(raw[:32]) == raw[32:] == base64.b64decode(new_public[5:])


def test_rotate_with_mismatched_whsk_key_returns_422_and_keeps_secret(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    created = post_endpoint(client, auth_headers, uid="ed", secret=SECRET).get_json()
    bad = "whsk_" + base64.b64encode(SEED + bytes(32)).decode()
    response = client.post(f"{BASE}/ed/secret/rotate", json={"key": bad}, headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "key"]
    row = stored(created["id"])
    assert row.secret == SECRET and row.old_keys == []


def _ed25519_delivery(client: FlaskClient, auth: Headers, receiver: Receiver) -> Any:
    """A message to an endpoint rotated from SECRET (HMAC, in grace) to WHSK; the request."""
    post_endpoint(client, auth, uid="ed", url=receiver.url, secret=SECRET)
    client.post(f"{BASE}/ed/secret/rotate", json={"key": WHSK}, headers=auth)
    send_message(client, auth)
    assert deliver_due() == ["success"]
    [got] = receiver.requests
    return got


def test_deliver_whsk_endpoint_signs_v1a_beside_old_hmac_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], receiver: Receiver
) -> None:
    got = _ed25519_delivery(client, auth_headers, receiver)
    entries = got.headers["webhook-signature"].split()
    assert got.headers["svix-signature"] == got.headers["webhook-signature"]
    assert [e.split(",", 1)[0] for e in entries] == ["v1a", "v1"]  # the current key first
    # Ed25519 is deterministic: the one signature of these exact bytes (RFC-checked signer)
    stamp = int(got.headers["webhook-timestamp"])
    assert entries[0] == sign(got.headers["webhook-id"], stamp, got.body, WHSK)
    standardwebhooks.Webhook(SECRET).verify(got.body, got.headers)  # the old key still verifies


def test_deliver_whsk_signature_verifies_with_public_key(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], receiver: Receiver
) -> None:
    got = _ed25519_delivery(client, auth_headers, receiver)
    public = client.get(f"{BASE}/ed/secret", headers=auth_headers).get_json()["key"]
    verifier = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    [signature] = v1a_entries(got.headers["webhook-signature"])
    verifier.verify(signature, signed_content(got))
    with pytest.raises(InvalidSignature):
        verifier.verify(signature, signed_content(got) + b" ")


# --- retry schedules ----------------------------------------------------------------------

SCHEDULE = "/api/v1/event-type/order.paid/retry-schedule"


def test_retry_schedule_defaults_to_null_and_round_trips_durations(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    assert client.get(SCHEDULE, headers=auth_headers).get_json() == {"retrySchedule": None}
    body = {"retrySchedule": [{"secs": 1, "nanos": 0}, {"secs": 2, "nanos": 500_000_000}]}
    response = client.put(SCHEDULE, json=body, headers=auth_headers)
    assert response.status_code == 200 and response.get_json() == body
    assert client.get(SCHEDULE, headers=auth_headers).get_json() == body
    short = client.put(SCHEDULE, json={"retrySchedule": [{"secs": 3}]}, headers=auth_headers)
    assert short.get_json() == {"retrySchedule": [{"secs": 3, "nanos": 0}]}
    cleared = client.put(SCHEDULE, json={"retrySchedule": None}, headers=auth_headers)
    assert cleared.status_code == 200 and cleared.get_json() == {"retrySchedule": None}
    assert client.get(SCHEDULE, headers=auth_headers).get_json() == {"retrySchedule": None}


def test_retry_schedule_of_unknown_event_type_returns_404(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    url = "/api/v1/event-type/nope/retry-schedule"
    assert client.get(url, headers=auth_headers).status_code == 404
    response = client.put(url, json={"retrySchedule": []}, headers=auth_headers)
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


@pytest.mark.parametrize(
    "schedule",
    [
        [{"secs": -1, "nanos": 0}],
        [{"secs": 1, "nanos": 1_000_000_000}],
        [{"secs": 7 * 86400 + 1, "nanos": 0}],
        [{"nanos": 5}],
        [5],
        [{"secs": 1, "nanos": 0}] * 51,
        "5,10",
    ],
)
def test_set_retry_schedule_invalid_returns_422(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], schedule: Any
) -> None:
    response = client.put(SCHEDULE, json={"retrySchedule": schedule}, headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][:2] == ["body", "retrySchedule"]


def test_upsert_event_type_keeps_its_retry_schedule(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    body = {"retrySchedule": [{"secs": 9, "nanos": 0}]}
    client.put(SCHEDULE, json=body, headers=auth_headers)
    put = client.put(
        "/api/v1/event-type/order.paid", json={"description": "changed"}, headers=auth_headers
    )
    assert put.status_code == 200
    assert client.get(SCHEDULE, headers=auth_headers).get_json() == body


def test_failing_delivery_follows_event_type_retry_schedule(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], receiver: Receiver
) -> None:
    receiver.status = 500
    post_endpoint(client, auth_headers, url=receiver.url)
    body = {"retrySchedule": [{"secs": 1, "nanos": 0}, {"secs": 1, "nanos": 500_000_000}]}
    assert client.put(SCHEDULE, json=body, headers=auth_headers).status_code == 200
    with freeze_time(utcnow()) as clock:
        custom = send_message(client, auth_headers, "order.paid")
        default = send_message(client, auth_headers, "user.signup")
        start = utcnow()
        assert deliver_due() == ["retry", "retry"]
        first = delivery_of(custom).next_attempt_at
        assert first is not None
        assert start + timedelta(seconds=0.8) <= first <= start + timedelta(seconds=1.2)
        later = delivery_of(default).next_attempt_at  # HERALD_RETRY_SCHEDULE: 5 s +-20 %
        assert later is not None and later >= start + timedelta(seconds=4)

        clock.tick(timedelta(seconds=1.3))  # only the custom one is due
        second_start = utcnow()
        assert deliver_due() == ["retry"]
        second = delivery_of(custom).next_attempt_at
        assert second is not None
        low, high = second_start + timedelta(seconds=1.2), second_start + timedelta(seconds=1.8)
        assert low <= second <= high

        clock.tick(timedelta(seconds=1.9))  # 3.2 s in: the default one is not due
        assert deliver_due() == ["failed"]  # two retries in its schedule: the third try is final
        row = delivery_of(custom)
        assert (row.status, row.next_attempt_at, row.attempt_count) == (MessageStatus.FAIL, None, 3)
    assert [a.response_status_code for a in attempts_for(custom)] == [500, 500, 500]
    assert len(attempts_for(default)) == 1


def test_empty_retry_schedule_makes_first_failure_final(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], receiver: Receiver
) -> None:
    receiver.status = 503
    post_endpoint(client, auth_headers, url=receiver.url)
    client.put(SCHEDULE, json={"retrySchedule": []}, headers=auth_headers)
    msg_id = send_message(client, auth_headers, "order.paid")
    assert deliver_due() == ["failed"]
    assert delivery_of(msg_id).status == MessageStatus.FAIL


# --- attempt headers ----------------------------------------------------------------------


def headers_of(client: FlaskClient, auth: Headers, msg_id: str, attempt_id: str) -> Any:
    return client.get(f"{MSG}/{msg_id}/attempt/{attempt_id}/headers", headers=auth)


def test_attempt_headers_return_sent_headers_masked_and_response_headers(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any], receiver: Receiver
) -> None:
    custom = {"X-Custom": "yes", "Authorization": "Bearer s3cret"}
    post_endpoint(client, auth_headers, url=receiver.url, headers=custom)
    msg_ids = [send_message(client, auth_headers), send_message(client, auth_headers)]
    assert deliver_due() == ["success", "success"]  # one claim, one batch recorded
    for msg_id in msg_ids:
        [attempt] = attempts_for(msg_id)
        response = headers_of(client, auth_headers, msg_id, attempt.id)
        assert response.status_code == 200
        body = response.get_json()
        sent = body["sentHeaders"]
        got = next(r for r in receiver.requests if r.headers["webhook-id"] == msg_id)
        assert sent["svix-id"] == sent["webhook-id"] == msg_id
        for name in ("webhook-timestamp", "webhook-signature", "content-type", "user-agent"):
            assert sent[name] == got.headers[name]
        assert sent["X-Custom"] == "yes" and "Authorization" not in sent
        assert body["sensitive"] == ["Authorization"]
        assert ["content-length", "2"] in body["responseHeaders"]
        assert any(name.lower() == "server" for name, _ in body["responseHeaders"])
        assert "s3cret" not in json.dumps(attempt.sent_headers)  # never stored


def test_attempt_headers_without_response_are_null(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    post_endpoint(client, auth_headers, url="http://127.0.0.1:9/refused")
    msg_id = send_message(client, auth_headers)
    assert deliver_due() == ["retry"]
    [attempt] = attempts_for(msg_id)
    body = headers_of(client, auth_headers, msg_id, attempt.id).get_json()
    assert body["responseHeaders"] is None and body["sentHeaders"]["webhook-id"] == msg_id


def test_attempt_response_headers_are_printable_ascii_and_bounded(
    client: FlaskClient,
    auth_headers: Headers,
    application: dict[str, Any],
    scripted_receiver: ScriptedReceiver,
) -> None:
    many = b"".join(b"X-N%d: v\r\n" % i for i in range(90))
    url = scripted_receiver(
        [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Long: "
                + b"a" * 3000
                + b"\r\nX-Bin: \xff\xfe\r\nX-Ctl: a\x01b\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                + many
                + b"Connection: close\r\n\r\nok",
                0,
            )
        ]
    )
    post_endpoint(client, auth_headers, url=url)
    msg_id = send_message(client, auth_headers)
    assert deliver_due() == ["success"]
    [attempt] = attempts_for(msg_id)
    pairs = headers_of(client, auth_headers, msg_id, attempt.id).get_json()["responseHeaders"]
    names = [name for name, _ in pairs]
    assert ["X-Long", "a" * 1024] in pairs
    assert "X-Bin" not in names and "X-Ctl" not in names
    assert [v for n, v in pairs if n == "Set-Cookie"] == ["a=1", "b=2"]  # repeats kept
    assert len(pairs) == 64 and sum(len(n) + len(v) for n, v in pairs) <= 8192


def test_attempt_headers_of_attempt_logged_before_headers_are_empty(
    client: FlaskClient, auth_headers: Headers, application: dict[str, Any]
) -> None:
    app = db.session.scalar(select(Application).where(Application.uid == "shop"))
    assert app is not None
    message = add_message(app)
    delivery = add_delivery(message, add_endpoint(app), MessageStatus.SUCCESS)
    attempt = add_attempt(delivery, MessageStatus.SUCCESS)
    response = headers_of(client, auth_headers, message.id, attempt.id)
    assert response.status_code == 200
    assert response.get_json() == {"sentHeaders": {}, "sensitive": [], "responseHeaders": None}
    missing = headers_of(client, auth_headers, message.id, "atmpt_" + "x" * 27)
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"
