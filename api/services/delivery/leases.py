"""Leases: how long a claimed delivery is held, and the renewal of the ones being sent.

A delivery being worked on is leased: `next_attempt_at` is the lease's end and `lease_token`
fences every write. Leases are short (HERALD_LEASE_SECONDS, 10 s), so a task lost with Redis
or held by a killed worker is due again within seconds; the worker renews the leases of the
deliveries it is sending (one UPDATE for all of them, ten times a lease, for those held a
second or more), so an attempt may take the whole HERALD_REQUEST_TIMEOUT and more without
another worker taking its row, and a lease being sent stays in its first half (see the
constants below).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import tuple_, update

from api.extensions import db
from api.models import Delivery, MessageStatus
from api.models.common import utcnow

logger = logging.getLogger(__name__)

# An attempt starts with at least PICKUP_SHARE of its lease left (load.load_job renews it
# otherwise); the renewal thread ticks RENEWALS_PER_LEASE times a lease and extends what was
# held QUICK_ATTEMPT s or more. So a lease being sent never falls into its second half:
# 0.8 - (1 s + 1/10 lease) / lease >= 0.5 for leases of 5 s and more (the default 10 s keeps
# a second in hand for a slow tick), which is what lets the dispatcher release second-half
# leases after a Redis restart without a concurrent resend.
PICKUP_SHARE = 0.8
RENEWALS_PER_LEASE = 10
QUICK_ATTEMPT = 1.0  # seconds: quicker attempts are never renewed (no write at all)


def lease_seconds() -> float:
    return float(current_app.config["LEASE_SECONDS"])


def lease_deadline(now: datetime | None = None) -> datetime:
    """When a lease taken (or renewed) at `now` expires."""
    return (now or utcnow()) + timedelta(seconds=lease_seconds())


class InFlight:
    """The deliveries an app's process is sending, renewed by one thread while any are held."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.held: dict[str, tuple[str, float]] = {}  # delivery id -> (lease token, since)
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()  # work arrived after an idle spell: tick now

    @contextmanager
    def holding(self, delivery_id: str, token: str) -> Iterator[None]:
        """Keep the lease renewed while the block runs (the POST and its record)."""
        with self.lock:
            if not self.held:
                self.wake.set()  # the thread may sleep a longer (old) interval
            self.held[delivery_id] = (token, time.monotonic())
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                if self.held.get(delivery_id, ("",))[0] == token:
                    del self.held[delivery_id]

    def renew(self, now: datetime | None = None, older_than: float = 0.0) -> int:
        """Extend the leases held for `older_than` seconds or more that are still ours (in
        the app context); returns how many. Quick attempts are never renewed at all."""
        cutoff = time.monotonic() - older_than
        with self.lock:
            pairs = [(key, token) for key, (token, since) in self.held.items() if since <= cutoff]
        if not pairs:
            return 0
        moment = now or utcnow()
        result = db.session.execute(
            update(Delivery)
            .where(
                tuple_(Delivery.id, Delivery.lease_token).in_(pairs),
                Delivery.status == MessageStatus.SENDING,
            )
            .values(next_attempt_at=lease_deadline(moment)),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _run(self) -> None:
        while True:
            with self.app.app_context():
                interval = lease_seconds() / RENEWALS_PER_LEASE
                try:
                    self.renew(older_than=QUICK_ATTEMPT)
                except Exception:  # the database is away: the next tick tries again
                    db.session.rollback()
                    logger.exception("lease.renew_failed")
                finally:
                    db.session.remove()
            self.wake.wait(interval)
            self.wake.clear()


_CREATE = threading.Lock()


def in_flight() -> InFlight:
    """The current app's registry of leases being renewed."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    registry = app.extensions.get("herald_in_flight")
    if registry is None:
        with _CREATE:
            registry = app.extensions.setdefault("herald_in_flight", InFlight(app))
    return registry  # type: ignore[no-any-return]


def holding(delivery_id: str, token: str) -> Any:
    """`with leases.holding(id, token):` keeps that lease renewed while the block runs."""
    return in_flight().holding(delivery_id, token)
