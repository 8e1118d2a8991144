"""Throttle (GCRA slots with reservations) and the per-endpoint concurrency cap, on real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.services.delivery.throttle import reserve_slot
from tests.conftest import REDIS_URL


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(REDIS_URL)
    yield conn
    conn.close()


def test_reserve_slot_spaces_sends_by_one_over_rate(client: redis.Redis) -> None:
    endpoint = uuid.uuid4().hex
    waits = [reserve_slot(client, endpoint, f"d{i}", rate=10.0, inline=5.0) for i in range(5)]
    assert waits[0] == 0.0
    for i, wait in enumerate(waits[1:], start=1):
        assert 0.1 * i - 0.05 <= wait <= 0.1 * i + 0.01


def test_reserve_slot_keeps_reservation_for_parked_delivery(client: redis.Redis) -> None:
    endpoint = uuid.uuid4().hex
    a, b, c = (f"{endpoint}-{name}" for name in "abc")
    assert reserve_slot(client, endpoint, a, rate=2.0, inline=0.1) == 0.0
    parked = reserve_slot(client, endpoint, b, rate=2.0, inline=0.1)
    assert 0.4 <= parked <= 0.5  # beyond inline: the slot is reserved for b
    third = reserve_slot(client, endpoint, c, rate=2.0, inline=0.1)
    assert 0.9 <= third <= 1.0  # b keeps its slot, c gets the next one
    time.sleep(parked)
    assert reserve_slot(client, endpoint, b, rate=2.0, inline=0.1) <= 0.05  # its own slot
    assert client.get(f"herald:throttle:res:{b}") is None


def test_reserve_slot_fails_closed_without_redis() -> None:
    broken = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    assert reserve_slot(broken, "ep", "d", rate=1.0) > 1.0
