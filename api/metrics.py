"""Prometheus metrics: every metric object, the one-line helpers the code calls, the values
computed at scrape time, and prometheus_client's multiprocess directory.

Multiprocess mode: each process (gunicorn workers, the Celery worker, anything that runs
`create_app`) writes its samples to mmap files in HERALD_METRICS_DIR, and a scrape sums them
(`registry()`). PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported,
so it is imported here only by `enable()`, which sets it first; while HERALD_METRICS is off
nothing is enabled and every helper returns at once. A helper costs an in-memory write (no
I/O); the queue gauges, `herald_postgres_up` and `herald_redis_up` are computed per scrape,
with short timeouts, by `ScrapeCollector`, which only the scrape's registry holds.

The gunicorn master (gunicorn.conf.py) loads this file by path, as it loads api/config.py:
it imports nothing of `api`. The master cleans the directory when a fresh master starts
(`clean_multiprocess_dir`), forgets a dead worker's live gauges (`mark_process_dead`) and, for
HERALD_METRICS=bind:<host:port>, serves the scrape on that address (`serve_forever`).
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ATTEMPT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
SCRAPE_TIMEOUT = 2  # seconds: connecting to and querying PostgreSQL / Redis per scrape
FAILURE_CLASSES = ("4xx", "5xx", "timeout", "connection", "blocked", "other")


class _Metrics:
    """The metric objects of this process (created once, by `enable`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        reg = None  # multiprocess: samples go to files; `registry()` collects them
        self.messages = Counter("herald_messages_accepted", "Messages accepted (202)", registry=reg)
        self.http = Counter(
            "herald_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=reg,
        )
        self.http_seconds = Histogram(
            "herald_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.in_progress = Gauge(
            "herald_http_requests_in_progress",
            "HTTP requests being handled (live processes only)",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.attempts = Counter(
            "herald_delivery_attempts",
            "Delivery attempts by result: success or the failure class",
            ["result"],
            registry=reg,
        )
        self.attempt_seconds = Histogram(
            "herald_delivery_attempt_duration_seconds",
            "Duration of a delivery attempt (the POST)",
            buckets=ATTEMPT_BUCKETS,
            registry=reg,
        )
        self.retries = Counter(
            "herald_delivery_retries_scheduled",
            "Failed attempts with a retry scheduled",
            registry=reg,
        )
        self.exhausted = Counter(
            "herald_delivery_retries_exhausted",
            "Deliveries failed for good (no retry left, or a manual attempt failed)",
            registry=reg,
        )
        self.disabled = Counter(
            "herald_endpoints_disabled", "Endpoints disabled automatically", registry=reg
        )
        self.throttled = Counter(
            "herald_throttle_waits",
            "Deliveries that waited for their endpoint's throttleRate slot: kind=sleep "
            "(waited in the sender) or park (put back in the queue)",
            ["kind"],
            registry=reg,
        )
        for result in ("success", *FAILURE_CLASSES):  # exported at 0 before the first one
            self.attempts.labels(result)
        for kind in ("sleep", "park"):
            self.throttled.labels(kind)


_metrics: _Metrics | None = None
_lock = threading.Lock()


def enable(config: Mapping[str, Any]) -> bool:
    """Turn metrics on in this process when HERALD_METRICS is not off (idempotent); called
    by `create_app` before anything imports prometheus_client."""
    global _metrics
    if config["METRICS"] == "off":
        return False
    with _lock:
        if _metrics is None:
            directory = str(config["METRICS_DIR"])
            os.makedirs(directory, exist_ok=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
            _metrics = _Metrics()
    return True


def init_app(app: Any) -> None:
    """Enable metrics for the app's config and time its requests (by route template)."""
    if not enable(app.config):
        return
    from flask import g, request

    metrics = _metrics
    assert metrics is not None

    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()
        metrics.in_progress.inc()

    @app.after_request
    def _count(response: Any) -> Any:
        started = g.pop("metrics_started", None)
        rule = request.url_rule
        route = rule.rule if rule is not None else "<unmatched>"
        method = request.method
        metrics.http.labels(route, method, str(response.status_code)).inc()
        if started is not None:
            metrics.http_seconds.labels(route, method).observe(time.perf_counter() - started)
            metrics.in_progress.dec()
        return response


# --- the helpers the code calls (one line at each place) ------------------------------------


def count_message_accepted() -> None:
    """A message was stored (api/services/messages.py)."""
    if _metrics is not None:
        _metrics.messages.inc()


def attempt_result(outcome: Any) -> str:
    """`success` or the failure class of an attempt's Outcome (http_client.py): `blocked` by
    the SSRF guard, `timeout`, `connection` (no response: refused, reset, DNS, TLS), `4xx`,
    `5xx`, or `other` (1xx/3xx: redirects are not followed)."""
    if outcome.ok:
        return "success"
    if outcome.blocked:
        return "blocked"
    if outcome.timed_out:
        return "timeout"
    code = int(outcome.status_code)
    if code == 0:
        return "connection"
    if 400 <= code < 500:
        return "4xx"
    if code >= 500:
        return "5xx"
    return "other"


def count_attempt(outcome: Any, label: str) -> None:
    """A recorded attempt (record.py): its result, its duration, and what came next (`label`:
    success / retry / failed)."""
    if _metrics is None:
        return
    _metrics.attempts.labels(attempt_result(outcome)).inc()
    _metrics.attempt_seconds.observe(outcome.duration_ms / 1000)
    if label == "retry":
        _metrics.retries.inc()
    elif label == "failed":
        _metrics.exhausted.inc()


def count_endpoint_disabled() -> None:
    """An endpoint was disabled after failing for ENDPOINT_DISABLE_AFTER (record.py)."""
    if _metrics is not None:
        _metrics.disabled.inc()


def count_throttle_wait(parked: bool) -> None:
    """A delivery waited for its throttle slot: slept inline, or parked (send.py)."""
    if _metrics is not None:
        _metrics.throttled.labels("park" if parked else "sleep").inc()


# --- the scrape ---------------------------------------------------------------------------

_QUEUE_PG = """
SELECT
  (SELECT count(*) FROM delivery WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= now()),
  (SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM delivery
    WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= now()),
  (SELECT count(*) FROM delivery WHERE lease_token IS NOT NULL AND next_attempt_at > now()),
  (SELECT count(*) FROM (SELECT endpoint_id FROM delivery
    WHERE lease_token IS NOT NULL AND next_attempt_at > now()
    GROUP BY endpoint_id HAVING count(*) >= %(cap)s) AS capped)
"""


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://) as libpq spells it."""
    return "postgresql://" + url.split("://", 1)[1]


class ScrapeCollector:
    """Gauges computed per scrape: the queue (PostgreSQL), dependencies up, build info."""

    def __init__(self, config: Mapping[str, Any], version: str) -> None:
        self.database_url = str(config.get("SQLALCHEMY_DATABASE_URI") or "")
        self.redis_url = str(config.get("REDIS_URL") or "")
        self.cap = int(config.get("ENDPOINT_CONCURRENCY") or 4)
        self.version = version

    def _queue(self) -> tuple[Any, ...] | None:
        import psycopg

        timeout = f"-c statement_timeout={SCRAPE_TIMEOUT * 1000}"
        with psycopg.connect(
            libpq_url(self.database_url), connect_timeout=SCRAPE_TIMEOUT, options=timeout
        ) as conn:
            return conn.execute(_QUEUE_PG, {"cap": self.cap}).fetchone()

    def _redis_up(self) -> bool:
        import redis

        try:
            client = redis.Redis.from_url(
                self.redis_url, socket_timeout=SCRAPE_TIMEOUT, socket_connect_timeout=SCRAPE_TIMEOUT
            )
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        info = GaugeMetricFamily("herald_build_info", "Herald's version", labels=["version"])
        info.add_metric([self.version], 1)
        yield info
        yield GaugeMetricFamily("herald_redis_up", "Redis answered a PING", self._redis_up())
        if not self.database_url.startswith("postgresql"):
            return  # the SQLite quickstart: no queue gauges
        try:
            row = self._queue()
        except Exception as exc:
            logger.warning("metrics.queue_failed", extra={"error": type(exc).__name__})
            row = None
        yield GaugeMetricFamily("herald_postgres_up", "PostgreSQL answered", row is not None)
        if row is None:
            return
        due, age, leased, capped = row
        for name, text, value in (
            ("herald_queue_due", "Delivery rows due now (waiting for a pump)", due),
            ("herald_queue_oldest_due_age_seconds", "Age of the oldest due row", age or 0),
            ("herald_queue_leased", "Delivery rows leased to a pump (being sent)", leased),
            (
                "herald_queue_endpoints_at_capacity",
                "Endpoints at HERALD_ENDPOINT_CONCURRENCY leases (their due rows wait)",
                capped,
            ),
        ):
            yield GaugeMetricFamily(name, text, float(value))


def registry(config: Mapping[str, Any], version: str) -> Any:
    """A registry for one scrape: every process's files plus the scrape-time gauges."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    scrape = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(scrape, path=str(config["METRICS_DIR"]))
    scrape.register(ScrapeCollector(config, version))
    return scrape


def render(config: Mapping[str, Any], version: str) -> tuple[bytes, str]:
    """The Prometheus text exposition of a scrape, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry(config, version)), CONTENT_TYPE_LATEST


# --- the multiprocess directory (gunicorn master) ---------------------------------------------


def clean_multiprocess_dir(directory: str) -> int:
    """Delete the samples of a previous run (only when no other master's workers are live);
    returns the number of files removed."""
    os.makedirs(directory, exist_ok=True)
    removed = 0
    for path in glob.glob(os.path.join(directory, "*.db")):
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def mark_process_dead(pid: int, directory: str) -> None:
    """A worker exited: drop its live gauges (herald_http_requests_in_progress)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)


_listener: Any = None


def serve_forever(config: Mapping[str, Any], version: str, retry: float = 1.0) -> None:
    """HERALD_METRICS=bind: serve the scrape on its own address from a daemon thread. During
    a USR2 hand-off the old master still holds the address: keep trying until it is free."""
    from prometheus_client.exposition import start_http_server

    host, port = config["METRICS_BIND"]

    def run() -> None:
        global _listener
        while True:
            try:
                _listener, _ = start_http_server(
                    port, host, registry=_LazyRegistry(config, version)
                )
                logger.info("metrics.listening", extra={"bind": f"{host}:{port}"})
                return
            except OSError:
                time.sleep(retry)

    threading.Thread(target=run, name="metrics-listener", daemon=True).start()


def close_listener_copy() -> None:
    """In a forked worker: close its copy of the master's listening socket, so that only the
    master holds the metrics address (and a USR2 successor can take it once the master is gone)."""
    if _listener is not None:
        _listener.socket.close()


class _LazyRegistry:
    """A fresh scrape registry per request (the collector reads the files as they are now)."""

    def __init__(self, config: Mapping[str, Any], version: str) -> None:
        self.config, self.version = config, version

    def collect(self) -> Iterator[Any]:
        yield from registry(self.config, self.version).collect()
