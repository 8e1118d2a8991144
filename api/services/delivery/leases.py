"""Leases: how long a claimed delivery is held, and the renewal of the ones being sent.

A delivery being worked on is leased: `next_attempt_at` is the lease's end and `lease_token`
fences every write. Leases are short (HERALD_LEASE_SECONDS, 10 s), so the rows of a killed
worker are due again within seconds; the pump renews the leases it holds (one UPDATE for
all of them, ten times a lease, for those held a second or more), so an attempt may take the
whole HERALD_REQUEST_TIMEOUT and more without another worker taking its row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import select, tuple_, update

from api.extensions import db
from api.models import Delivery, MessageStatus
from api.models.common import utcnow

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 10
QUICK_ATTEMPT = 1.0  # seconds: leases held for less are never renewed (no write at all)


def lease_seconds() -> float:
    return float(current_app.config["LEASE_SECONDS"])


def lease_deadline(now: datetime | None = None) -> datetime:
    """When a lease taken (or renewed) at `now` expires."""
    return (now or utcnow()) + timedelta(seconds=lease_seconds())


class InFlight:
    """The leases a process holds, renewed by one thread while any are held."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.held: dict[str, tuple[str, float]] = {}  # delivery id -> (lease token, since)
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()  # work arrived after an idle spell: tick now

    def hold(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Start renewing these (delivery id, lease token) leases."""
        since = time.monotonic()
        with self.lock:
            if not self.held:
                self.wake.set()  # the thread may sleep a longer (old) interval
            self.held.update((key, (token, since)) for key, token in pairs)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)
                self.thread.start()

    def release(self, delivery_ids: Iterable[str]) -> None:
        """Stop renewing (the outcome is recorded, or the lease is given up)."""
        with self.lock:
            for key in delivery_ids:
                self.held.pop(key, None)

    def renew(self, now: datetime | None = None, older_than: float = 0.0) -> int:
        """Extend the leases held for `older_than` seconds or more that are still ours (in
        the app context); returns how many. Rows are locked in id order, as every writer of
        several deliveries does (no deadlock with a delete)."""
        cutoff = time.monotonic() - older_than
        with self.lock:
            pairs = [(key, token) for key, (token, since) in self.held.items() if since <= cutoff]
        if not pairs:
            return 0
        moment = now or utcnow()
        ours = (
            select(Delivery.id)
            .where(
                tuple_(Delivery.id, Delivery.lease_token).in_(pairs),
                Delivery.status == MessageStatus.SENDING,
            )
            .order_by(Delivery.id)
            .with_for_update()
        )
        result = db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ours.scalar_subquery()))
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
