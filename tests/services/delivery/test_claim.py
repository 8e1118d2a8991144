"""The dispatcher (claim.py): claims due rows only, re-leases them, bounds in-flight work,
skips locks; notices a Redis that came back empty."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from api.extensions import db, get_redis
from api.models import Delivery, MessageStatus
from api.models.common import utcnow
from api.services.delivery import claim
from api.services.queue import QUEUE
from tests.api.factories import seed
from tests.support import Receiver


@pytest.fixture
def published(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Capture what the dispatcher publishes instead of sending it to Redis (whose marker is
    set: a Redis that kept its queue, unless the test removes it)."""
    app.extensions["redis"].set(claim.BROKER_MARK, "1")
    app.extensions["redis"].delete(QUEUE)  # what other tests queued (no worker runs them)
    sent: list[tuple[str, ...]] = []
    monkeypatch.setattr(
        claim,
        "enqueue_many",
        lambda name, arg_lists: sent.extend((name, *args) for args in arg_lists),
    )
    return sent


def _make(due: bool, leased: bool = False, status: int = MessageStatus.SENDING) -> str:
    d = seed("http://127.0.0.1:9/")
    d.status = status
    d.next_attempt_at = utcnow() + timedelta(seconds=-5 if due else 300)
    d.lease_token = "tok" if leased else None
    if status != MessageStatus.SENDING:
        d.next_attempt_at = None
    db.session.commit()
    return d.id


def test_dispatch_due_claims_only_due_rows(
    app: Flask, db_session: object, published: list[tuple[str, ...]]
) -> None:
    due, later = _make(due=True), _make(due=False)
    done = _make(due=True, status=MessageStatus.SUCCESS)
    assert claim.dispatch_due() == 1
    [(name, delivery_id, token)] = published
    assert (name, delivery_id) == ("herald.deliver", due)
    db.session.expire_all()
    row = db.session.get(Delivery, due)
    assert row is not None and row.lease_token == token and len(token) == 32
    lease = timedelta(seconds=app.config["LEASE_SECONDS"])
    assert row.next_attempt_at > utcnow() + lease - timedelta(seconds=5)  # type: ignore[operator]
    assert db.session.get(Delivery, later).lease_token is None  # type: ignore[union-attr]
    assert db.session.get(Delivery, done).lease_token is None  # type: ignore[union-attr]


def test_dispatch_due_reclaims_expired_lease_with_new_token(
    db_session: object, published: list[tuple[str, ...]]
) -> None:
    stuck = _make(due=True, leased=True)  # its worker died: the lease ran out
    assert claim.dispatch_due() == 1
    assert published[0][1] == stuck and published[0][2] != "tok"


def test_dispatch_due_leaves_running_leases_while_redis_keeps_its_queue(
    db_session: object, published: list[tuple[str, ...]]
) -> None:
    _make(due=False, leased=True)
    assert claim.dispatch_due() == 0 and published == []


def _leased(seconds_left: float) -> str:
    d = seed("http://127.0.0.1:9/")
    d.next_attempt_at = utcnow() + timedelta(seconds=seconds_left)
    d.lease_token = "tok"
    db.session.commit()
    return d.id


def test_dispatch_due_republishes_older_leases_when_redis_came_back_empty(
    app: Flask, db_session: object, published: list[tuple[str, ...]]
) -> None:
    lease = app.config["LEASE_SECONDS"]
    queued = _leased(lease * 0.3)  # its task waited in the queue Redis lost
    sending = _leased(lease * 0.9)  # just picked up or renewed: being sent right now
    later = _make(due=False)  # a retry scheduled for later: not a lease
    get_redis().delete(claim.BROKER_MARK)  # what a restart without persistence leaves
    assert claim.dispatch_due() == 1
    [(_, delivery_id, token)] = published
    assert delivery_id == queued and token != "tok"  # a new lease: the old task is stale
    assert get_redis().get(claim.BROKER_MARK) is not None
    db.session.expire_all()
    assert db.session.get(Delivery, sending).lease_token == "tok"  # type: ignore[union-attr]
    assert db.session.get(Delivery, later).lease_token is None  # type: ignore[union-attr]
    assert claim.dispatch_due() == 0  # the marker is back: nothing more to release


def test_dispatch_due_respects_in_flight_cap(
    app: Flask,
    db_session: object,
    published: list[tuple[str, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "DISPATCH_MAX_IN_FLIGHT", 3)
    monkeypatch.setitem(app.config, "DISPATCH_BATCH", 2)
    _make(due=False, leased=True)  # one lease still running
    ids = {_make(due=True) for _ in range(4)}
    assert claim.dispatch_due() == 2
    assert claim.dispatch_due() == 0  # full: 3 in flight
    assert {p[1] for p in published} <= ids


@pytest.mark.postgresql_only  # FOR UPDATE SKIP LOCKED
def test_claim_skips_rows_locked_by_another_dispatcher(
    app: Flask, committed_db: None, published: list[tuple[str, ...]]
) -> None:
    with app.app_context():
        for _ in range(6):
            _make(due=True)
    with app.app_context():  # dispatcher A holds its claim open (not committed yet)
        now = utcnow()
        first = claim._claim_postgresql(now, now + timedelta(seconds=60), 4, 4)
        with app.app_context():  # dispatcher B, another session and connection
            second = claim.claim_due(10)
        db.session.commit()
    assert len(first) == 4 and len(second) == 2
    assert not {i for i, _ in first} & {i for i, _ in second}


def _on_one_endpoint(count: int, due: bool = True, leased: bool = False) -> list[str]:
    """`count` deliveries that all go to the first one's endpoint."""
    ids = [_make(due=due, leased=leased) for _ in range(count)]
    endpoint_id = db.session.get(Delivery, ids[0]).endpoint_id  # type: ignore[union-attr]
    for delivery_id in ids:
        db.session.get(Delivery, delivery_id).endpoint_id = endpoint_id  # type: ignore[union-attr]
    db.session.commit()
    return ids


@pytest.mark.parametrize(
    "claimer",
    [pytest.param("_claim_postgresql", marks=pytest.mark.postgresql_only), "_claim_generic"],
)
def test_claim_is_fair_per_endpoint(db_session: object, claimer: str) -> None:
    busy = _on_one_endpoint(6)
    other = _make(due=True)
    now = utcnow()
    claimed = [c[0] for c in getattr(claim, claimer)(now, now + timedelta(seconds=60), 10, 2)]
    assert len([i for i in claimed if i in busy]) == 2 and other in claimed
    again = getattr(claim, claimer)(now, now + timedelta(seconds=60), 10, 2)
    assert again == []  # the busy endpoint already has its 2 leases in flight


def test_claim_next_for_endpoint_takes_oldest_due_row(db_session: object) -> None:
    ids = _on_one_endpoint(3)
    endpoint_id = db.session.get(Delivery, ids[0]).endpoint_id  # type: ignore[union-attr]
    claimed = [claim.claim_next_for_endpoint(endpoint_id) for _ in range(4)]
    assert sorted(c[0] for c in claimed if c) == sorted(ids) and claimed[3] is None


def test_sqlite_quickstart_path_delivers_and_chains(
    tmp_path: Path, published: list[tuple[str, ...]], receiver: Receiver
) -> None:
    """The single-dispatcher SQLite path: claim, deliver, chain, record (no PostgreSQL SQL)."""
    from flask_migrate import upgrade

    from api import create_app
    from api.services.delivery.deliver import deliver
    from tests.conftest import test_overrides

    sqlite_app = create_app(
        test_overrides(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/q.db", ENDPOINT_CONCURRENCY=1)
    )
    url = receiver.url
    with sqlite_app.app_context():
        upgrade()
        ids = []
        for _ in range(3):
            d = seed(url)
            d.lease_token, d.next_attempt_at = None, utcnow() - timedelta(seconds=1)
            ids.append(d.id)
        endpoint_id = db.session.get(Delivery, ids[0]).endpoint_id  # type: ignore[union-attr]
        for delivery_id in ids:
            db.session.get(Delivery, delivery_id).endpoint_id = endpoint_id  # type: ignore[union-attr]
        db.session.commit()
        assert claim.dispatch_due() == 1  # one lease per endpoint (cap 1)
        _, first, token = published[0]
        assert deliver(first, token) == "success"
        db.session.expire_all()
        statuses = [db.session.get(Delivery, i).status for i in ids]  # type: ignore[union-attr]
    assert (
        len(receiver.requests) == 3 and statuses == [MessageStatus.SUCCESS] * 3
    )  # the rest by chaining
