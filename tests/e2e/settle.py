"""Waiting for "every accepted message arrived", and saying why not: late or lost.

The database is the source of truth: a message the receiver has not seen yet is

- **late** while one of its delivery rows is still open (`next_attempt_at` set: leased, or a
  retry scheduled): the system will still send it, the machine is merely slow;
- **lost** when it has no delivery left to try (no row, or every row final) and never arrived.

`settle()` waits, event-driven, until every expected message arrived. Once `expected_within`
has passed it reports the late ones ("late after N s") and keeps waiting while any is late, up to
`bound`; it stops early when everything missing is lost (nothing will deliver it). Then, for
the duplicate count, it waits until every delivery row of those messages is final and no request
arrived for `quiet` s. The caller asserts `outcome.ok` and shows `outcome.problems()`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.engine import make_url

from api.models import MessageStatus
from tests.support import Receiver

# Sized for a loaded 2-core machine: a few hundred messages normally all arrive within seconds
# (the fault tests' worst case idle is ~lease + the worker restart, ~10 s).
EXPECTED_WITHIN = 90.0
BOUND = 300.0  # keep waiting this long in all while deliveries are still open (late)
POLL = 0.25
CLASSIFY_EVERY = 2.0  # seconds between database reads while waiting past expected_within

STATUS_NAMES = {s.value: s.name.lower() for s in MessageStatus}


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://...) as a libpq conninfo URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def delivery_states(database_url: str, msg_ids: Collection[str]) -> dict[str, list[str]]:
    """For each message id: its delivery rows as 'status/attempts/open|final' (empty: none)."""
    states: dict[str, list[str]] = {m: [] for m in msg_ids}
    if not states:
        return states
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT msg_id, status, attempt_count, next_attempt_at IS NOT NULL"
            " FROM delivery WHERE msg_id = ANY(%s)",
            (list(states),),
        ).fetchall()
    for msg_id, status, attempts, is_open in rows:
        name = STATUS_NAMES.get(status, str(status))
        states[msg_id].append(f"{name}/{attempts} attempts/{'open' if is_open else 'final'}")
    return states


def open_deliveries(database_url: str, msg_ids: Collection[str]) -> int:
    """How many delivery rows of these messages are still open (leased or retry scheduled)."""
    if not msg_ids:
        return 0
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM delivery WHERE msg_id = ANY(%s) AND next_attempt_at IS NOT NULL",
            (list(msg_ids),),
        ).fetchone()
    return int(row[0]) if row else 0


def classify(database_url: str, missing: Collection[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(late, lost) among messages not received: late = a delivery row is still open."""
    late, lost = {}, {}
    for msg_id, rows in delivery_states(database_url, missing).items():
        if any(r.endswith("/open") for r in rows):
            late[msg_id] = ", ".join(rows)
        else:
            lost[msg_id] = ", ".join(rows) or "no delivery row"
    return late, lost


@dataclass
class Outcome:
    expected: int
    delivered: int  # expected messages that arrived at least once
    requests: int  # requests for expected messages (delivered + duplicates)
    late: dict[str, str] = field(default_factory=dict)  # msg id -> its delivery rows
    lost: dict[str, str] = field(default_factory=dict)
    waited: float = 0.0  # seconds until everything arrived, or until the wait gave up
    settled: float = 0.0  # seconds until the rows were final and the receiver quiet
    bound: float = BOUND

    @property
    def duplicates(self) -> int:
        return self.requests - self.delivered

    @property
    def ok(self) -> bool:
        return not self.late and not self.lost and self.delivered == self.expected

    def summary(self) -> str:
        return (
            f"expected={self.expected} delivered={self.delivered} lost={len(self.lost)} "
            f"late={len(self.late)} duplicates={self.duplicates} "
            f"(waited {self.waited:.1f} s, settled {self.settled:.1f} s)"
        )

    def problems(self) -> str:
        parts = [self.summary()]
        if self.lost:
            sample = "; ".join(f"{m}: {s}" for m, s in list(self.lost.items())[:5])
            parts.append(
                f"LOST {len(self.lost)}: no delivery left to try and never received ({sample})"
            )
        if self.late:
            sample = "; ".join(f"{m}: {s}" for m, s in list(self.late.items())[:5])
            parts.append(
                f"LATE {len(self.late)} after {self.waited:.1f} s: a delivery is still open "
                f"(pending/leased), not lost: the machine is slower than the {self.bound:.0f} s "
                f"bound ({sample})"
            )
        return "\n".join(parts)


def settle(
    receiver: Receiver,
    expected: Collection[str],
    database_url: str,
    *,
    expected_within: float = EXPECTED_WITHIN,
    bound: float = BOUND,
    quiet: float = 1.0,
    label: str = "settle",
) -> Outcome:
    """Wait until every message in `expected` reached `receiver` (see the module docstring)."""
    want = set(expected)
    start = time.monotonic()
    late: dict[str, str] = {}
    lost: dict[str, str] = {}
    reported = False
    next_classify = start + expected_within
    while True:
        missing = want - set(receiver.webhook_ids())
        now = time.monotonic()
        if not missing:
            late, lost = {}, {}
            break
        if now >= next_classify:
            late, lost = classify(database_url, missing)
            next_classify = min(now + CLASSIFY_EVERY, start + bound)
            if not late:
                break  # nothing left will deliver the missing ones
            if not reported:
                reported = True
                print(
                    f"[{label}] {len(late)} late after {now - start:.1f} s (a delivery still "
                    f"open), {len(lost)} lost; waiting up to {bound:.0f} s"
                )
            if now - start >= bound:
                break
        time.sleep(POLL)
    waited = time.monotonic() - start

    # duplicates: no row of ours may send again once all are final; then a quiet window for a
    # stale execution's request still in flight
    if not missing:
        settle_deadline = time.monotonic() + max(30.0, bound - waited)
        while open_deliveries(database_url, want) and time.monotonic() < settle_deadline:
            time.sleep(POLL)
        seen, quiet_since = len(receiver.requests), time.monotonic()
        while time.monotonic() - quiet_since < quiet and time.monotonic() < settle_deadline:
            time.sleep(0.05)
            if len(receiver.requests) != seen:
                seen, quiet_since = len(receiver.requests), time.monotonic()
    ids = Counter(i for i in receiver.webhook_ids() if i in want)
    outcome = Outcome(
        expected=len(want),
        delivered=len(ids),
        requests=sum(ids.values()),
        late=late,
        lost=lost,
        waited=waited,
        settled=time.monotonic() - start,
        bound=bound,
    )
    print(f"[{label}] {outcome.summary()}")
    return outcome
