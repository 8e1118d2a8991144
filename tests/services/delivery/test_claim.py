"""Claiming (claim.py): due rows only, new leases, fair per endpoint (the concurrency cap),
jobs joined, dead rows canceled, locks skipped; the dispatcher's wake-ups."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask

from api.extensions import db, get_redis
from api.models import Delivery, Endpoint, MessageStatus
from api.models.common import utcnow
from api.services.delivery import claim, outbox
from api.services.queue import QUEUE
from tests.api.factories import PAYLOAD, SECRET, seed
from tests.support import no_pump_awake


@pytest.fixture
def broker(app: Flask) -> object:
    """An empty queue and no awake flag (what other tests left is not theirs)."""
    client = app.extensions["redis"]
    no_pump_awake(client)
    return client


def _make(due: bool, leased: bool = False, status: int = MessageStatus.SENDING) -> str:
    d = seed("http://127.0.0.1:9/")
    d.status = status
    d.next_attempt_at = utcnow() + timedelta(seconds=-5 if due else 300)
    d.lease_token = "tok" if leased else None
    if status != MessageStatus.SENDING:
        d.next_attempt_at = None
    db.session.commit()
    return d.id


def _on_one_endpoint(count: int, due: bool = True, leased: bool = False) -> list[str]:
    """`count` deliveries that all go to the first one's endpoint."""
    ids = [_make(due=due, leased=leased) for _ in range(count)]
    endpoint_id = db.session.get(Delivery, ids[0]).endpoint_id  # type: ignore[union-attr]
    for delivery_id in ids:
        db.session.get(Delivery, delivery_id).endpoint_id = endpoint_id  # type: ignore[union-attr]
    db.session.commit()
    return ids


def test_claim_jobs_leases_only_due_rows_and_joins_the_job(app: Flask, db_session: object) -> None:
    due, later = _make(due=True), _make(due=False)
    done = _make(due=True, status=MessageStatus.SUCCESS)
    [job] = claim.claim_jobs(10)
    assert job.delivery_id == due and len(job.lease_token) == 32
    assert (job.body, job.keys, job.url) == (PAYLOAD.encode(), [SECRET], "http://127.0.0.1:9/")
    db.session.expire_all()
    row = db.session.get(Delivery, due)
    assert row is not None and row.lease_token == job.lease_token
    lease = timedelta(seconds=app.config["LEASE_SECONDS"])
    assert row.next_attempt_at > utcnow() + lease - timedelta(seconds=5)  # type: ignore[operator]
    assert db.session.get(Delivery, later).lease_token is None  # type: ignore[union-attr]
    assert db.session.get(Delivery, done).lease_token is None  # type: ignore[union-attr]
    assert claim.claim_jobs(10) == []  # leased now


def test_claim_jobs_takes_an_expired_lease_with_a_new_token(db_session: object) -> None:
    stuck = _make(due=True, leased=True)  # its worker died: the lease ran out
    [job] = claim.claim_jobs(10)
    assert job.delivery_id == stuck and job.lease_token != "tok"


def test_claim_jobs_respects_the_limit_oldest_first(db_session: object) -> None:
    ids = [_make(due=True) for _ in range(5)]
    assert [j.delivery_id for j in claim.claim_jobs(3)] == ids[:3]
    assert [j.delivery_id for j in claim.claim_jobs(3)] == ids[3:]
    assert claim.claim_jobs(0) == []


def test_claim_is_fair_per_endpoint(
    app: Flask, db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "ENDPOINT_CONCURRENCY", 2)
    busy = _on_one_endpoint(6)
    other = _make(due=True)
    claimed = [j.delivery_id for j in claim.claim_jobs(10)]
    assert len([i for i in claimed if i in busy]) == 2 and other in claimed
    assert claim.claim_jobs(10) == []  # the busy endpoint already has its 2 leases running


def test_claim_counts_running_leases_against_the_cap(
    app: Flask, db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "ENDPOINT_CONCURRENCY", 2)
    ids = _on_one_endpoint(4)
    running = db.session.get(Delivery, ids[0])
    assert running is not None
    running.lease_token, running.next_attempt_at = "tok", utcnow() + timedelta(seconds=9)
    db.session.commit()  # another worker is sending this one
    assert len(claim.claim_jobs(10)) == 1


@pytest.mark.parametrize("case", ["disabled", "purged"])
def test_claim_cancels_rows_of_a_disabled_endpoint_or_purged_payload(
    db_session: object, case: str
) -> None:
    d = seed("http://127.0.0.1:9/", payload=None if case == "purged" else PAYLOAD)
    if case == "disabled":
        db.session.get(Endpoint, d.endpoint_id).disabled = True  # type: ignore[union-attr]
    db.session.commit()
    assert claim.claim_jobs(10) == []
    db.session.expire_all()
    row = db.session.get(Delivery, d.id)
    assert row is not None
    assert (row.status, row.next_attempt_at, row.lease_token) == (
        MessageStatus.CANCELED,
        None,
        None,
    )


@pytest.mark.postgresql_only  # FOR UPDATE SKIP LOCKED
def test_claim_skips_rows_locked_by_another_claim(app: Flask, committed_db: None) -> None:
    with app.app_context():
        for _ in range(6):
            _make(due=True)
    with app.app_context():  # pump A holds its claim open (not committed yet)
        db.session.connection()  # a transaction, so the claim joins it
        now = utcnow()
        first = claim._claim_postgresql(now, now + timedelta(seconds=60), 4, 4)
        with app.app_context():  # pump B, another session and connection
            second = claim.claim_jobs(10)
        db.session.commit()
    assert len(first) == 4 and len(second) == 2
    assert not {r.id for r in first} & {j.delivery_id for j in second}


def test_dispatch_due_wakes_a_pump_only_when_rows_are_due(
    app: Flask, db_session: object, broker: object
) -> None:
    _make(due=False)
    assert claim.dispatch_due() == 0 and get_redis().llen(QUEUE) == 0
    d = db.session.get(Delivery, _make(due=True))
    assert d is not None
    d.next_attempt_at = utcnow() - timedelta(seconds=0.5)  # due for less than an interval
    db.session.commit()
    assert claim.dispatch_due() == 1
    assert get_redis().llen(QUEUE) == 1 and get_redis().get(outbox.AWAKE_KEY) is not None
    assert claim.dispatch_due() == 0  # a pump is awake (or woken): nothing more
    assert get_redis().llen(QUEUE) == 1


def test_dispatch_due_forces_a_wake_up_for_a_row_waiting_past_an_interval(
    app: Flask, db_session: object, broker: object
) -> None:
    _make(due=True)  # due 5 s ago, longer than the 2 s interval
    get_redis().set(outbox.AWAKE_KEY, "1")  # a pump is awake somewhere, and not getting to it
    assert claim.dispatch_due() == 1 and get_redis().llen(QUEUE) == 1


def test_wake_publishes_once_while_awake(app: Flask, db_session: object, broker: object) -> None:
    assert outbox.wake() and not outbox.wake() and not outbox.wake()
    assert get_redis().llen(QUEUE) == 1
    ttl = get_redis().ttl(outbox.AWAKE_KEY)
    assert 0 < ttl <= outbox.awake_seconds()
    get_redis().delete(outbox.AWAKE_KEY)  # a pump went idle
    assert not outbox.wake()  # this process saw it awake a moment ago: nothing asked
    assert get_redis().llen(QUEUE) == 1 and get_redis().get(outbox.AWAKE_KEY) is None
    time.sleep(outbox.WAKE_WINDOW)
    assert outbox.wake() and get_redis().llen(QUEUE) == 2


def test_wake_without_redis_logs_one_line_per_interval(
    app: Flask,
    db_session: object,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redis
    from freezegun import freeze_time
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    down = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    with freeze_time("2026-12-01 12:00:00"), caplog.at_level("WARNING"):
        monkeypatch.setattr(outbox, "_FAILURES", outbox._FailureLog())
        assert [outbox.wake(client=down) for _ in range(5)] == [False] * 5
    lines = [r for r in caplog.records if r.getMessage() == "queue.publish_failed"]
    assert len(lines) == 1 and lines[0].failures == 1  # type: ignore[attr-defined]
