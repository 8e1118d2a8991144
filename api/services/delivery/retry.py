"""Retry schedule: the delay before the next automatic attempt (Svix semantics)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

JITTER = 0.2  # a delay is drawn uniformly from [0.8 x, 1.2 x]
OVERLOAD_PENALTY = 60.0  # at least this long after a timeout or a 429


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if invalid."""
    if not value:
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", text):  # ASCII digits only: "²".isdigit() is true
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    moment = now or datetime.now(UTC)
    return max(0.0, (when - moment).total_seconds())


def next_delay(
    failures: int,
    schedule: Sequence[float],
    *,
    status_code: int = 0,
    timed_out: bool = False,
    retry_after: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until retry after the `failures`-th failed attempt (1-based); None = exhausted.

    Delay i = schedule[i - 1]; a timeout or 429 waits at least 60 s; a Retry-After is honoured
    but clamped to [delay, 2 x delay]; otherwise the delay gets +-20 % jitter.
    """
    if failures < 1 or failures > len(schedule):
        return None
    delay = float(schedule[failures - 1])
    if timed_out or status_code == 429:
        delay = max(delay, OVERLOAD_PENALTY)
    asked = parse_retry_after(retry_after, now)
    if asked is not None:
        return min(max(asked, delay), 2 * delay)
    draw = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return delay * draw
