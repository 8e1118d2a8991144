"""The pump: one loop per worker process that claims due rows in batches, sends them
concurrently on its sender threads, and records what came back in batches.

    wake-up (herald.pump task) ─► loop: record what came back ─► claim up to the free
                                   ▲     senders (claim.py) ─► senders: throttle, POST
                                   └──────────── results ◄────────────┘

A burst costs a few claims and records, not a broker message per row: while a pump runs
anywhere, the awake flag (`outbox.AWAKE_KEY`) is set and refreshed, so producers publish
nothing and the running loops find new rows on their next claim. A loop with nothing to do
lingers a moment (polling cheaply), then clears the flag, waits out the producers' window
(outbox.WAKE_WINDOW: a producer that saw the flag set that recently publishes nothing),
claims once more (a row committed before then is seen here; one committed after publishes a
new wake-up) and stops. A lost wake-up or a dead pump costs at most the flag's expiry or a
lease: the dispatcher's next pass (claim.dispatch_due) wakes one for any row that is due.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app

from api.extensions import db, get_redis
from api.models.common import utcnow
from api.services.delivery import claim, outbox, record
from api.services.delivery.http_client import Outcome
from api.services.delivery.job import Job
from api.services.delivery.leases import InFlight
from api.services.delivery.send import Result, Settings, attempt

logger = logging.getLogger(__name__)

LINGER = 0.5  # seconds an idle loop keeps polling before it stops
IDLE_POLL = 0.005  # seconds between the cheap due-checks of a lingering loop
BUSY_WAIT = 0.02  # seconds a loop with deliveries in flight waits for a result at most
REFRESH = 1.0  # seconds between refreshes of the awake flag
_WAKE = object()


class Pump:
    """The delivery loop of one process, and its sender threads."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.app = app
        self.size = max(1, int(config["DELIVERY_CONCURRENCY"]))
        self.senders = ThreadPoolExecutor(self.size, thread_name_prefix="sender")
        self.leases = InFlight(app)
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.running = False
        self.stopping = threading.Event()
        self.in_flight = 0

    # --- entry points -------------------------------------------------------------------

    def wake(self) -> bool:
        """Run the loop in this thread (app context) until idle, unless it already runs in
        this process (it is then told to look again). True when this call ran it."""
        with self.lock:
            if self.running:
                self.events.put(_WAKE)
                return False
            self.running = True
        try:
            self._loop()
        finally:
            with self.lock:
                self.running = False
        return True

    def stop(self) -> None:
        """Warm shutdown: claim nothing more; the running loop records what is in flight."""
        self.stopping.set()
        self.events.put(_WAKE)

    def deliver(self, jobs: Iterable[Job]) -> list[str]:
        """Send these claimed jobs concurrently and record them; their labels, in order
        (what the loop does with one claim, run to the end)."""
        jobs = list(jobs)
        self._submit(jobs)
        results: dict[str, Result] = {}
        while len(results) < len(jobs):
            item = self.events.get()
            if isinstance(item, Result):
                results[item.job.delivery_id] = item
        self.in_flight -= len(jobs)
        ordered = [results[job.delivery_id] for job in jobs]
        try:
            return record.record_results(ordered)
        finally:
            self.leases.release(job.delivery_id for job in jobs)

    # --- the loop -----------------------------------------------------------------------

    def _submit(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        self.leases.hold((job.delivery_id, job.lease_token) for job in jobs)
        config, client = current_app.config, get_redis()
        settings = Settings(float(config["REQUEST_TIMEOUT"]), config["WHITELIST_SUBNETS"])
        self.in_flight += len(jobs)
        for job in jobs:
            self.senders.submit(self._send, job, settings, client)

    def _send(self, job: Job, settings: Settings, client: Any) -> None:
        try:
            result = attempt(job, settings, client)
        except Exception as exc:  # a bug, not the receiver: still an attempt that is recorded
            logger.exception("delivery.send_crashed", extra={"delivery_id": job.delivery_id})
            result = Result(job, Outcome(0, f"internal error: {type(exc).__name__}", 0))
        self.events.put(result)

    def _take(self, timeout: float) -> list[Result]:
        """What came back: wait up to `timeout` for the first event, then take the rest."""
        items = []
        try:
            items.append(
                self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
            )
            while True:
                items.append(self.events.get_nowait())
        except queue.Empty:
            pass
        return [item for item in items if isinstance(item, Result)]

    def _record(self, results: list[Result]) -> None:
        if not results:
            return
        try:
            record.record_results(results)
        except Exception:  # the database is away: the leases run out and the rows are retried
            db.session.rollback()
            logger.exception("delivery.record_lost", extra={"results": len(results)})
            time.sleep(0.5)
        finally:
            self.in_flight -= len(results)
            self.leases.release(result.job.delivery_id for result in results)

    def _claim(self) -> list[Job]:
        room = self.size - self.in_flight
        if room <= 0 or self.stopping.is_set():
            return []
        try:
            return claim.claim_jobs(room)
        except Exception:
            db.session.rollback()
            logger.exception("delivery.claim_failed")
            time.sleep(0.5)
            return []

    def _loop(self) -> None:
        flag = _AwakeFlag()
        idle_since: float | None = None
        results = self._take(0)
        while True:
            flag.refresh()
            self._record(results)
            jobs = self._claim()
            self._submit(jobs)
            if jobs or self.in_flight:
                idle_since = None
                results = self._take(BUSY_WAIT)
                continue
            if self.stopping.is_set():
                return
            now = time.monotonic()
            idle_since = idle_since or now
            if now - idle_since < LINGER:
                results = self._take(IDLE_POLL)
                while not results and not self._due() and time.monotonic() - idle_since < LINGER:
                    results = self._take(IDLE_POLL)
                continue
            flag.clear()
            # anything committed before the clear, or by a producer that trusted a look at the
            # flag taken before it (outbox.WAKE_WINDOW)
            self.stopping.wait(2 * outbox.WAKE_WINDOW)
            jobs = self._claim()
            if jobs:
                self._submit(jobs)
                idle_since = None
                results = []
                continue
            with self.lock:
                if self.events.empty():
                    self.running = False
                    return
            results = self._take(0)

    def _due(self) -> bool:
        try:
            return claim.oldest_due(utcnow()) is not None
        except Exception:
            db.session.rollback()
            return False


class _AwakeFlag:
    """The awake flag as one loop holds it: refreshed each REFRESH s, cleared when idle.
    Redis errors are ignored (the flag is an optimisation; the dispatcher is the fallback)."""

    def __init__(self) -> None:
        self.refreshed = 0.0
        self.client = get_redis()
        self.ttl = outbox.awake_seconds()

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self.refreshed >= REFRESH:
            self.refreshed = now
            self._call(lambda: self.client.set(outbox.AWAKE_KEY, "1", ex=self.ttl))

    def clear(self) -> None:
        self.refreshed = 0.0
        self._call(lambda: self.client.delete(outbox.AWAKE_KEY))

    @staticmethod
    def _call(command: Any) -> None:
        try:
            command()
        except Exception:
            logger.warning("pump.flag_unavailable", exc_info=True)


_CREATE = threading.Lock()


def pump() -> Pump:
    """The current app's pump (one per process)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get("herald_pump")
    if found is None:
        with _CREATE:
            found = app.extensions.setdefault("herald_pump", Pump(app))
    return found  # type: ignore[no-any-return]
