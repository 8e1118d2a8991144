"""Test support shared by every test package: what the local webhook receiver records."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

# How long a test waits for something that normally takes well under a second (a delivery, an
# attempt being recorded): sized for a slow, loaded 2-core machine. Waits poll and return as soon
# as the condition holds, so a long deadline costs nothing when the machine is fast.
SLOW_MACHINE_TIMEOUT = 60.0


def eventually(
    check: Callable[[], T | None], timeout: float = SLOW_MACHINE_TIMEOUT, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy (bounded); returns that."""
    start = time.monotonic()
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() - start >= timeout:
            raise AssertionError(f"{what or 'condition'} not met in {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the receiver recorded it


@dataclass
class Receiver:
    """A local HTTP receiver: records every POST and answers with `status` (changeable).

    `statuses` plans the answers by arrival: the Nth request recorded gets `statuses[N-1]`, the
    ones after the plan get `status`. (For sequential requests: a test that flips `status` after
    seeing request N races with request N's own answer, which is read right after recording it.)
    """

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    started: int = 0  # requests whose handling began (counted before `delay`)
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: list[int] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = SLOW_MACHINE_TIMEOUT) -> list[Received]:
        """Block until at least `count` requests arrived (bounded), then return them."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"receiver got {len(self.requests)} requests, wanted {count} "
            f"(waited {time.monotonic() - start:.1f} s)"
        )

    def webhook_ids(self) -> list[str]:
        """The `webhook-id` of every request so far, in arrival order (with repeats)."""
        with self.lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]


def _status(self: Receiver) -> int:
    # the conftest receiver reads `status` right after appending the request it answers
    n = len(self.requests)
    if 0 < n <= len(self.statuses):
        return self.statuses[n - 1]
    return self._status  # type: ignore[attr-defined]


def _set_status(self: Receiver, value: int) -> None:
    self._status = value  # type: ignore[attr-defined]


# after @dataclass: __init__ keeps `status: int = 200` and assigns through the property
Receiver.status = property(_status, _set_status)  # type: ignore[assignment]
