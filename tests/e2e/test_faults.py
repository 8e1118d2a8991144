"""Fault tests: SIGKILL the worker, and restart Redis empty, in the middle of a stream; TERM is a
warm shutdown that finishes the delivery in flight.

Real processes: a private redis-server, `celery worker` and `celery beat` (the dispatcher)
subprocesses on the test database; messages are committed (and published) by the test while
the fault happens. Every accepted message must arrive (unique webhook-id); duplicates are
counted and must stay within 1 %, and each message arrives within 15 s of the later of its
acceptance and the fault's end — all at the default lease, dispatch and timeout settings.
Waits are event-driven with deadlines sized for a loaded
machine; a message that has not arrived is reported as late (its delivery row is still open)
or lost (nothing left to try) — tests/e2e/settle.py.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import select

from api.extensions import db
from api.models import Delivery, MessageAttempt, MessageStatus
from api.services.delivery import outbox
from tests.api.factories import seed
from tests.conftest import DATABASE_URL
from tests.e2e.processes import BOOT_TIMEOUT, PrivateRedis, Stack
from tests.e2e.settle import Outcome, settle
from tests.support import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MESSAGES = 400
RECOVERY_BOUND = 15.0  # s: every message arrives this soon after it was accepted, or after
# the fault was over (Redis answering again, the killed worker restarted), whichever is later


def produce(
    app: Flask,
    url: str,
    publisher: redis.Redis,
    count: int,
    stats: dict[str, int],
    accepted: dict[str, float],
) -> None:
    """Commit `count` messages (10 ms apart) with due deliveries, each followed by the
    ingest's wake-up; `accepted` gets each message's commit time (monotonic)."""
    with app.app_context():
        for _ in range(count):
            d = seed(url, commit=False)
            db.session.commit()
            accepted[d.msg_id] = time.monotonic()
            if not outbox.wake(client=publisher) and not _answers(publisher):
                stats["publish_failed"] += 1  # broker down: the dispatcher wakes a pump later
            time.sleep(0.01)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def run_stream(
    app: Flask, receiver: Receiver, stack: Stack, redis_url: str, fault: Callable[[], float]
) -> tuple[Outcome, dict[str, int]]:
    """Produce MESSAGES while `fault()` strikes (it returns when the fault was over); every
    message must arrive (settle) within RECOVERY_BOUND of max(accepted, fault over)."""
    receiver.delay = 0.01
    publisher = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=1)
    stats = {"publish_failed": 0}
    accepted: dict[str, float] = {}
    producer = threading.Thread(
        target=produce, args=(app, receiver.url, publisher, MESSAGES, stats, accepted)
    )
    started = time.monotonic()
    producer.start()
    # the fault hits after the first ~80 arrivals (the worker is up and the stream flowing)
    deadline = started + BOOT_TIMEOUT
    while len(receiver.requests) < 80 and time.monotonic() < deadline:
        time.sleep(0.02)
    fault_at = time.monotonic() - started
    arrived_before = len(receiver.requests)
    over = fault()
    producer.join(180)
    assert not producer.is_alive(), f"the producer did not commit {MESSAGES} messages in time"
    ids = list(accepted)
    assert len(ids) == MESSAGES
    outcome = settle(receiver, ids, DATABASE_URL, label="fault stream")
    first: dict[str, float] = {}
    for request in receiver.requests:
        first.setdefault(request.headers.get("webhook-id", ""), request.at)
    slowest = max(
        (first[i] - max(accepted[i], over), i) for i in ids if i in first
    )  # seconds past the later of acceptance and the fault's end
    stats["slowest_recovery_ms"] = int(slowest[0] * 1000)
    print(
        f"\nfault stream: messages={MESSAGES} unique={outcome.delivered} lost={len(outcome.lost)} "
        f"late={len(outcome.late)} duplicates={outcome.duplicates} "
        f"publish_failed={stats['publish_failed']} fault_at={fault_at:.1f}s "
        f"(after {arrived_before} arrivals) all_arrived={outcome.waited:.1f}s "
        f"settled={outcome.settled:.1f}s after the producer "
        f"slowest_after_fault_or_accept={slowest[0]:.1f}s"
    )
    assert slowest[0] <= RECOVERY_BOUND, (
        f"{slowest[1]} arrived {slowest[0]:.1f} s after the later of its acceptance and the "
        f"fault's end (bound {RECOVERY_BOUND:.0f} s, default settings)"
    )
    return outcome, stats


def test_sigkill_worker_mid_stream_loses_nothing(
    app: Flask,
    receiver: Receiver,
    stack_factory: Callable[[str], Stack],
    private_redis: PrivateRedis,
) -> None:
    stack = stack_factory(private_redis.url)
    stack.start("worker")
    stack.start("beat")

    def fault() -> float:
        stack.kill("worker")  # SIGKILL: no warm shutdown, no acks
        time.sleep(1.0)
        stack.start("worker")
        return time.monotonic()  # "restarted": within 15 s of this

    outcome, _ = run_stream(app, receiver, stack, private_redis.url, fault)
    assert outcome.ok, outcome.problems()
    assert outcome.duplicates <= MESSAGES // 100, outcome.problems()


def test_redis_restart_empty_mid_stream_loses_nothing(
    app: Flask,
    receiver: Receiver,
    stack_factory: Callable[[str], Stack],
    private_redis: PrivateRedis,
) -> None:
    stack = stack_factory(private_redis.url)
    stack.start("worker")
    stack.start("beat")

    def fault() -> float:
        private_redis.kill()
        time.sleep(1.5)
        private_redis.restart()
        return time.monotonic()  # Redis answers again (restart waits for its port)

    outcome, _ = run_stream(app, receiver, stack, private_redis.url, fault)
    assert outcome.ok, outcome.problems()
    assert outcome.duplicates <= MESSAGES // 100, outcome.problems()


def test_term_is_a_warm_shutdown_that_finishes_the_delivery_in_flight(
    app: Flask,
    receiver: Receiver,
    stack_factory: Callable[[str], Stack],
    private_redis: PrivateRedis,
) -> None:
    stack = stack_factory(private_redis.url)
    receiver.delay = 3.0  # the receiver is slow: TERM arrives while the POST is in flight
    stack.start("worker")
    with app.app_context():
        delivery = seed(receiver.url)
        delivery_id = delivery.id
        assert outbox.wake(client=redis.Redis.from_url(private_redis.url))
    deadline = time.monotonic() + BOOT_TIMEOUT
    while receiver.started < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert receiver.started == 1, f"the worker never started the delivery ({BOOT_TIMEOUT:.0f} s)"
    worker = stack.procs.pop("worker")
    os.kill(worker.pid, signal.SIGTERM)  # Celery's warm shutdown
    assert worker.wait(90) == 0
    assert len(receiver.requests) == 1
    with app.app_context():
        row = db.session.get(Delivery, delivery_id)
        attempts = db.session.scalars(
            select(MessageAttempt).where(MessageAttempt.delivery_id == delivery_id)
        ).all()
        assert row is not None and row.status == MessageStatus.SUCCESS
        assert [(a.status, a.response_status_code) for a in attempts] == [(0, 200)]
