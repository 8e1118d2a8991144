"""Retry delays: schedule, jitter, overload penalty, Retry-After clamping, exhaustion."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from freezegun import freeze_time

from api.services.delivery.retry import next_delay, parse_retry_after

SCHEDULE = [5, 300, 1800]


def test_next_delay_follows_schedule_with_jitter() -> None:
    rng = random.Random(7)
    for failures, base in enumerate(SCHEDULE, start=1):
        delays = [next_delay(failures, SCHEDULE, rng=rng) for _ in range(200)]
        assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
        assert max(d for d in delays if d) - min(d for d in delays if d) > 0.2 * base


def test_next_delay_exhausted_after_last_entry() -> None:
    assert next_delay(len(SCHEDULE) + 1, SCHEDULE) is None
    assert next_delay(1, []) is None


def test_next_delay_after_timeout_or_429_is_at_least_a_minute() -> None:
    for _ in range(50):
        assert next_delay(1, SCHEDULE, timed_out=True) >= 0.8 * 60  # type: ignore[operator]
        assert next_delay(1, SCHEDULE, status_code=429) >= 0.8 * 60  # type: ignore[operator]


def test_next_delay_honours_retry_after_seconds_clamped() -> None:
    assert next_delay(2, SCHEDULE, retry_after="450") == 450
    assert next_delay(2, SCHEDULE, retry_after="10") == 300
    assert next_delay(2, SCHEDULE, retry_after="99999") == 600
    assert next_delay(1, SCHEDULE, status_code=429, retry_after="90") == 90


@freeze_time("2026-03-01 12:00:00")
def test_parse_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=400)
    assert parse_retry_after(format_datetime(when, usegmt=True)) == 400
    assert next_delay(2, SCHEDULE, retry_after=format_datetime(when, usegmt=True)) == 400
    assert parse_retry_after("garbage") is None
    assert next_delay(1, SCHEDULE, retry_after="garbage") is not None


@pytest.mark.parametrize("value", ["²", "١٢", "1e3", "-5", "12.5", "9" * 40, "Mon, 99 Foo 99999"])
def test_parse_retry_after_refuses_what_is_not_ascii_seconds_or_a_date(value: str) -> None:
    assert parse_retry_after(value) is None
