"""Claimed jobs sent by the pump against real loopback receivers, recorded in batches and
fenced on the lease."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from flask import Flask
from freezegun import freeze_time
from svix.webhooks import Webhook

from api.extensions import db
from api.models import (
    Delivery,
    Endpoint,
    MessageAttempt,
    MessageStatus,
    TriggerType,
)
from api.models.common import utcnow
from api.services.delivery.claim import claim_jobs
from api.services.delivery.http_client import Outcome
from api.services.delivery.job import Job
from api.services.delivery.pump import pump
from api.services.delivery.record import record_results
from api.services.delivery.send import USER_AGENT, Result
from tests.api.factories import OLD_SECRET, PAYLOAD, SECRET, leased_job, seed
from tests.support import Receiver, ScriptedReceiver


def attempts_of(delivery_id: str) -> list[MessageAttempt]:
    return list(
        db.session.scalars(
            db.select(MessageAttempt).where(MessageAttempt.delivery_id == delivery_id)
        )
    )


def deliver_due() -> dict[str, str]:
    """Claim what is due and send it through this process's pump: {delivery id: label}."""
    jobs = claim_jobs(64)
    return dict(zip((job.delivery_id for job in jobs), pump().deliver(jobs), strict=True))


def deliver(d: Delivery) -> str:
    """What happened to `d` when everything due was delivered."""
    return deliver_due().get(d.id, "not claimed")


def record_outcome(job: Job, outcome: Outcome, now: datetime | None = None) -> str:
    [label] = record_results([Result(job, outcome)], now)
    return label


def fresh(delivery_id: str) -> Delivery:
    db.session.expire_all()
    row = db.session.get(Delivery, delivery_id)
    assert row is not None
    return row


def test_deliver_success_sends_signed_exact_body(db_session: object, receiver: Receiver) -> None:
    d = seed(receiver.url, headers={"X-Custom": "yes", "User-Agent": "spoof"})
    d_id, msg_id = d.id, d.msg_id
    assert deliver(d) == "success"
    got = receiver.requests[0]
    assert got.body == PAYLOAD.encode()
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == USER_AGENT
    assert got.headers["x-custom"] == "yes"
    assert got.headers["svix-id"] == got.headers["webhook-id"] == msg_id
    Webhook(SECRET).verify(got.body, got.headers)
    standardwebhooks.Webhook(SECRET).verify(got.body, got.headers)
    row = fresh(d_id)
    assert (row.status, row.next_attempt_at, row.lease_token) == (0, None, None)
    assert row.attempt_count == 1
    [attempt] = attempts_of(d_id)
    assert (attempt.status, attempt.response_status_code, attempt.response) == (0, 200, "ok")
    assert attempt.next_attempt_at is None and attempt.response_duration_ms >= 0


def test_deliver_signs_with_every_live_key(db_session: object, receiver: Receiver) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    d = seed(receiver.url, old_keys=[{"key": OLD_SECRET, "expiration": later}])
    deliver(d)
    got = receiver.requests[0]
    assert len(got.headers["webhook-signature"].split()) == 2
    for key in (SECRET, OLD_SECRET):
        Webhook(key).verify(got.body, got.headers)
        standardwebhooks.Webhook(key).verify(got.body, got.headers)


def test_deliver_stale_lease_records_nothing(db_session: object, receiver: Receiver) -> None:
    d = seed(receiver.url)
    jobs = claim_jobs(10)
    fresh(d.id).lease_token = "taken-over"  # the lease ran out and another worker claimed it
    db.session.commit()
    assert pump().deliver(jobs) == ["stale"]
    assert fresh(d.id).attempt_count == 0 and attempts_of(d.id) == []


def test_deliver_failure_schedules_retry_and_starts_failure_clock(
    db_session: object, receiver: Receiver
) -> None:
    receiver.status = 500
    d = seed(receiver.url)
    before = utcnow()
    assert deliver(d) == "retry"
    row = fresh(d.id)
    assert row.status == MessageStatus.SENDING and row.lease_token is None
    assert row.next_attempt_at is not None
    latest = utcnow() + timedelta(seconds=6.1)
    assert before + timedelta(seconds=3.9) <= row.next_attempt_at <= latest
    [attempt] = attempts_of(d.id)
    assert attempt.status == 2 and attempt.response_status_code == 500
    assert attempt.next_attempt_at == row.next_attempt_at
    assert db.session.get(Endpoint, row.endpoint_id).first_failure_at is not None  # type: ignore[union-attr]


def test_deliver_redirect_is_a_failure_not_followed(db_session: object, receiver: Receiver) -> None:
    receiver.status = 302
    d = seed(receiver.url)
    assert deliver(d) == "retry"
    assert len(receiver.requests) == 1


def test_deliver_manual_failure_is_final(db_session: object, receiver: Receiver) -> None:
    receiver.status = 503
    d = seed(receiver.url, trigger=TriggerType.MANUAL)
    assert deliver(d) == "failed"
    row = fresh(d.id)
    assert (row.status, row.next_attempt_at) == (MessageStatus.FAIL, None)


def test_deliver_exhausted_schedule_is_final(
    app: Flask, db_session: object, receiver: Receiver
) -> None:
    receiver.status = 500
    d = seed(receiver.url)
    d.attempt_count = len(app.config["RETRY_SCHEDULE"])
    db.session.commit()
    assert deliver(d) == "failed"
    assert fresh(d.id).status == MessageStatus.FAIL


def test_deliver_timeout_records_status_zero(
    app: Flask, db_session: object, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_TIMEOUT", 0.3)
    receiver.delay = 1.0
    d = seed(receiver.url)
    assert deliver(d) == "retry"
    [attempt] = attempts_of(d.id)
    assert attempt.response_status_code == 0 and "timeout" in attempt.response
    assert fresh(d.id).next_attempt_at >= utcnow() + timedelta(seconds=47)  # type: ignore[operator]


def test_deliver_refuses_loopback_without_whitelist(
    app: Flask, db_session: object, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WHITELIST_SUBNETS", [])
    d = seed(receiver.url)
    assert deliver(d) == "retry"
    [attempt] = attempts_of(d.id)
    assert attempt.response_status_code == 0 and "loopback" in attempt.response
    assert receiver.requests == []


def test_deliver_throttled_endpoint_parks_without_counting_attempt(
    db_session: object, receiver: Receiver
) -> None:
    from api.extensions import get_redis
    from api.services.delivery.throttle import reserve_slot

    first, second = seed(receiver.url, throttle_rate=1), seed(receiver.url)
    second.endpoint_id, second.next_attempt_at = first.endpoint_id, utcnow() + timedelta(hours=1)
    db.session.commit()
    assert deliver(first) == "success"
    assert reserve_slot(get_redis(), first.endpoint_id, "other", 1.0) > 0.5  # next slot taken
    fresh(second.id).next_attempt_at = utcnow()
    db.session.commit()
    assert deliver(second) == "throttled"  # its slot is ~2 s away
    row = fresh(second.id)
    assert row.attempt_count == 0 and row.lease_token is None
    assert utcnow() + timedelta(seconds=1) < row.next_attempt_at < utcnow() + timedelta(seconds=2.5)  # type: ignore[operator]
    assert len(receiver.requests) == 1


def test_record_outcome_retry_after_and_429_penalty(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with freeze_time(now):
        record_outcome(leased_job(d), Outcome(429, "", 3, retry_after="100"), now)
    assert fresh(d.id).next_attempt_at == now + timedelta(seconds=100)


def test_record_outcome_stale_lease_writes_nothing(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    job = leased_job(d)
    d.lease_token = "someone-else"
    db.session.commit()
    assert record_outcome(job, Outcome(200, "ok", 1)) == "stale"
    assert attempts_of(d.id) == []


def test_record_outcome_auto_disables_after_continuous_failure(
    app: Flask, db_session: object
) -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    limit = app.config["ENDPOINT_DISABLE_AFTER"]
    d = seed("http://127.0.0.1:9/")
    endpoint_id = d.endpoint_id
    last = len(app.config["RETRY_SCHEDULE"])  # Svix's rule: disabled when a message exhausts
    steps = (
        (0, last, False),
        (limit - 60, last, False),
        (limit + 1, 0, False),
        (limit + 2, last, True),
    )
    for offset, earlier_attempts, expect_disabled in steps:
        moment = start + timedelta(seconds=offset)
        with freeze_time(moment):
            d = seed("http://127.0.0.1:9/")
            d.endpoint_id = endpoint_id
            d.attempt_count = earlier_attempts
            db.session.commit()
            record_outcome(leased_job(d), Outcome(500, "", 1), moment)
        db.session.expire_all()
        endpoint = db.session.get(Endpoint, endpoint_id)
        assert endpoint is not None and endpoint.first_failure_at == start
        assert endpoint.disabled is expect_disabled


def test_record_outcome_success_resets_failure_clock(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/", first_failure_at=utcnow() - timedelta(days=1))
    record_outcome(leased_job(d), Outcome(204, "", 1))
    db.session.expire_all()
    assert db.session.get(Endpoint, d.endpoint_id).first_failure_at is None  # type: ignore[union-attr]


def test_deliver_sends_a_batch_concurrently_and_records_it_in_one_go(
    db_session: object, receiver: Receiver
) -> None:
    receiver.delay = 0.3
    first = seed(receiver.url)
    rest = [seed(receiver.url) for _ in range(3)]
    for d in rest:
        d.endpoint_id = first.endpoint_id  # four rows of one endpoint (the cap is 4)
    db.session.commit()
    started = time.monotonic()
    labels = deliver_due()
    took = time.monotonic() - started
    assert sorted(labels) == sorted(d.id for d in [first, *rest])
    assert set(labels.values()) == {"success"} and len(receiver.requests) == 4
    assert took < 1.0, f"4 attempts of 0.3 s took {took:.2f} s: not sent concurrently"
    assert all(fresh(d.id).status == MessageStatus.SUCCESS for d in [first, *rest])


# --- receivers that answer oddly: each ends as a recorded attempt, never a wedged delivery ---

Script = ScriptedReceiver


def test_deliver_response_with_nul_bytes_is_recorded_as_base64(
    db_session: object, scripted_receiver: Script
) -> None:
    body = b"ok\x00\x00done"
    url = scripted_receiver([(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + body, 0)])
    d = seed(url)
    assert deliver(d) == "success"
    [attempt] = attempts_of(d.id)
    assert attempt.response_status_code == 200
    assert base64.b64decode(attempt.response) == body
    assert fresh(d.id).status == MessageStatus.SUCCESS


@pytest.mark.parametrize("value", [b"\xb2", b"\xc2\xb2", b"1\xd9\xa3", b"99999999999999999999"])
def test_deliver_odd_retry_after_falls_back_to_the_schedule(
    db_session: object, scripted_receiver: Script, value: bytes
) -> None:
    head = b"HTTP/1.1 503 Busy\r\nRetry-After: " + value + b"\r\nContent-Length: 0\r\n\r\n"
    d = seed(scripted_receiver([(head, 0)]))
    before = utcnow()
    assert deliver(d) == "retry"
    [attempt] = attempts_of(d.id)
    assert attempt.response_status_code == 503
    due = fresh(d.id).next_attempt_at
    assert due is not None and timedelta(seconds=3) < due - before < timedelta(seconds=7)


@pytest.mark.parametrize(
    "steps",
    [
        # the body trickled a byte at a time
        [(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0.2)] + [(b"x", 0.2)] * 100,
        # the headers trickled
        [(b"HTTP/1.1 200 OK\r\n", 0.2)] + [(b"X", 0.2)] * 100,
        # no length: read until close, trickled; a cut body must not pass for a success
        [(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 0.2)] + [(b"x", 0.2)] * 100,
    ],
    ids=["body", "headers", "until-close"],
)
def test_deliver_trickling_receiver_is_cut_at_the_request_timeout(
    app: Flask,
    db_session: object,
    scripted_receiver: Script,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[tuple[bytes, float]],
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_TIMEOUT", 0.5)
    d = seed(scripted_receiver(steps))
    started = time.monotonic()
    assert deliver(d) == "retry"
    took = time.monotonic() - started
    assert took < 4.5, f"the attempt took {took:.1f} s with a 0.5 s request timeout"
    [attempt] = attempts_of(d.id)
    assert attempt.response_status_code == 0 and "timeout" in attempt.response
    assert 500 <= attempt.response_duration_ms < 4500
    # a timeout waits at least 60 s (-20 % jitter) before the retry
    assert fresh(d.id).next_attempt_at >= utcnow() + timedelta(seconds=47)  # type: ignore[operator]


@pytest.mark.postgresql_only  # PostgreSQL text refuses NUL; SQLite stores it
def test_record_attempt_the_database_refuses_is_recorded_with_a_note(db_session: object) -> None:
    d = seed("http://127.0.0.1:9/")
    job = leased_job(d)
    assert record_outcome(job, Outcome(500, "bad\x00text", 7, retry_after="3600")) == "retry"
    [attempt] = attempts_of(d.id)
    assert attempt.response_status_code == 500 and "could not be stored" in attempt.response
    due = fresh(d.id).next_attempt_at  # the schedule's 5 s, not the refused Retry-After
    assert due is not None and due - utcnow() < timedelta(seconds=7)
