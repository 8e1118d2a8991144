"""Delivery throughput: drain a backlog through Herald vs a raw requests.Session loop.

`python -m bench.delivery [--backlog 10000] [--concurrency 64] [--workers 1]`.

An extra scenario beside bench.api_delivery (the headline, through the API): the rows are
seeded into the table and made due at once, as a burst of retries coming due, so it measures
the pump's drain alone. Also holds the helpers bench.api_delivery shares (receiver, database).
Database herald_bench_delivery, Redis db 10; the receiver runs in its own process.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_bench_delivery"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
SECRET = "whsec_" + base64.b64encode(b"b" * 24).decode()
BODY = json.dumps(
    {
        "type": "invoice.paid",
        "data": {
            "id": "in_123",
            "amount": 4200,
            "lines": [{"sku": f"sku-{i}", "qty": i} for i in range(8)],
        },
    },
    separators=(",", ":"),
)


def run_receiver(port: int) -> None:
    """Receiver process: HTTP/1.1 keep-alive; /hang never answers in time; GET /stats."""
    arrivals: dict[str, list[float]] = {}
    first_seen: dict[str, float] = {}  # webhook-id -> first arrival (wall clock)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path.startswith("/hang"):
                time.sleep(60)
            now = time.time()
            with lock:
                arrivals.setdefault(self.path, []).append(now)
                first_seen.setdefault(self.headers.get("webhook-id", ""), now)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:
            with lock:
                views = {"/times": arrivals, "/ids": first_seen}
                body = json.dumps(
                    views.get(self.path) or {k: len(v) for k, v in arrivals.items()}
                ).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self) -> None:
            with lock:
                arrivals.clear()
                first_seen.clear()
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


@contextmanager
def receiver() -> Iterator[str]:
    """Start the receiver process on a free port; yields its base URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.delivery", "receiver", str(port)], cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(base + "/stats", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def received(base: str, view: str = "/stats") -> dict[str, Any]:
    """Counts per path (/stats), arrival times per path (/times) or first arrival per id (/ids)."""
    result: dict[str, Any] = requests.get(base + view, timeout=30).json()
    return result


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


def bench_app(**overrides: Any) -> Any:
    """A Herald app on the bench database (production settings, loopback whitelisted)."""
    from api import create_app

    return create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "WHITELIST_SUBNETS": "127.0.0.0/8",
            "LOG_LEVEL": "WARNING",
            **overrides,
        }
    )


def reset_database(app: Any) -> None:
    """Recreate and migrate the bench database; flush the bench Redis db."""
    from flask_migrate import upgrade

    from api.extensions import db, get_redis
    from tests.conftest import recreate_database

    recreate_database(app.config["SQLALCHEMY_DATABASE_URI"])
    with app.app_context():
        upgrade()
        get_redis().flushdb()
        db.session.remove()
        db.engine.dispose()


def seed(
    app: Any, urls: list[str], per_url: int, due_in: float = 3600.0, throttle: int | None = None
) -> list[str]:
    """Bulk insert one endpoint per url and `per_url` messages each (deliveries due later)."""
    from sqlalchemy import insert

    from api.extensions import db
    from api.ids import new_id
    from api.models import Application, Delivery, Endpoint, Message, Organization
    from api.models.common import utcnow

    with app.app_context():
        now = utcnow()
        org = Organization(name=f"bench-{new_id('org')}")
        db.session.add(org)
        db.session.flush()
        application = Application(org_id=org.id, name="bench")
        db.session.add(application)
        db.session.flush()
        endpoint_ids = []
        for url in urls:
            ep = Endpoint(
                app_id=application.id,
                url=url,
                secret=SECRET,
                old_keys=[],
                headers={},
                throttle_rate=throttle,
            )
            db.session.add(ep)
            db.session.flush()
            endpoint_ids.append(ep.id)
        messages, deliveries = [], []
        for ep_id in endpoint_ids:
            for _ in range(per_url):
                msg_id = new_id("msg")
                messages.append(
                    {
                        "id": msg_id,
                        "app_id": application.id,
                        "org_id": org.id,
                        "event_type": "invoice.paid",
                        "payload": BODY,
                        "expiration": now + timedelta(days=90),
                        "created_at": now,
                    }
                )
                deliveries.append(
                    {
                        "id": new_id("msgep"),
                        "msg_id": msg_id,
                        "endpoint_id": ep_id,
                        "app_id": application.id,
                        "status": 3,
                        "trigger_type": 0,
                        "attempt_count": 0,
                        "lease_token": None,
                        "next_attempt_at": now + timedelta(seconds=due_in),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        for start in range(0, len(messages), 2000):
            db.session.execute(insert(Message), messages[start : start + 2000])
            db.session.execute(insert(Delivery), deliveries[start : start + 2000])
        db.session.commit()
        return endpoint_ids


def make_due(app: Any) -> float:
    """Make every pending delivery due now and wake a pump (as a retry burst coming due and
    the dispatcher's pass would); returns the wall time it happened."""
    from sqlalchemy import update

    from api.extensions import db
    from api.models import Delivery
    from api.models.common import utcnow
    from api.services.delivery import outbox

    with app.app_context():
        db.session.execute(
            update(Delivery).where(Delivery.status == 3).values(next_attempt_at=utcnow())
        )
        db.session.commit()
        outbox.wake(force=True)
    return time.time()


class Processes:
    """Herald worker + beat subprocesses for the bench database; killed by process group."""

    def __init__(self, pool: str, senders: int, workers: int = 1, **env: str) -> None:
        self.env = {
            **os.environ,
            "HERALD_ENV": "production",
            "HERALD_SECRET_KEY": "bench",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "HERALD_WHITELIST_SUBNETS": "127.0.0.0/8",
            "HERALD_LOG_LEVEL": "WARNING",
            "HERALD_DELIVERY_CONCURRENCY": str(senders),
            **env,
            # BENCH_PYTHONPATH: e.g. a `pip install --target` dir holding gevent
            "PYTHONPATH": os.pathsep.join(
                p for p in (os.environ.get("BENCH_PYTHONPATH"), str(ROOT)) if p
            ),
        }
        self.pool, self.workers = pool, workers
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        celery = [str(BIN / "celery"), "-A", "workers.main"]
        worker = [
            *celery,
            "worker",
            "-P",
            self.pool,
            "-c",
            "4",  # as the Procfile: the pump, the dispatcher and periodic tasks
            "-Q",
            "herald,herald.dispatch",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
        beat = [
            *celery,
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            f"/tmp/herald-bench-beat-{os.getpid()}",
        ]
        log = open(f"/tmp/herald-bench-{os.getpid()}.log", "ab")
        for argv in [*[worker] * self.workers, beat]:
            self.procs.append(
                subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        time.sleep(4.0)  # let the worker connect and fork before the clock starts
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def wait_count(base: str, total: int, timeout: float) -> float:
    """Poll the receiver until `total` requests arrived; returns the wall time (or raises)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(received(base).values()) >= total:
            return time.time()
        time.sleep(0.1)
    raise SystemExit(f"timeout: {sum(received(base).values())}/{total} arrived")


def raw_loop(url: str, total: int, concurrency: int) -> float:
    """Requests/s of plain Session POSTs (same body and signature work) with N threads."""
    from api.services.delivery.signing import webhook_headers

    body = BODY.encode()
    counter = iter(range(total))
    lock = threading.Lock()

    def work() -> None:
        session = requests.Session()
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            headers = {
                "content-type": "application/json",
                **webhook_headers("msg_x", int(time.time()), body, [SECRET]),
            }
            session.post(url, data=body, headers=headers, timeout=15).raise_for_status()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=64, help="senders in total")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    app = bench_app()
    reset_database(app)
    with receiver() as base:
        raw_before = raw_loop(base + "/raw", min(args.backlog, 4000), args.concurrency)
        urls = [f"{base}/ep{i}" for i in range(args.endpoints)]
        seed(app, urls, args.backlog // args.endpoints)
        total = args.endpoints * (args.backlog // args.endpoints)
        requests.delete(base + "/stats", timeout=5)
        with Processes(args.pool, args.concurrency // args.workers, args.workers):
            started = make_due(app)
            finished = wait_count(base, total, timeout=300)
        herald = total / (finished - started)
        # the baseline brackets the drain, so drift in the machine's load hits both alike
        raw_after = raw_loop(base + "/raw", min(args.backlog, 4000), args.concurrency)
    raw = (raw_before + raw_after) / 2
    print(
        f"raw requests.Session loop: {raw:.0f} req/s (concurrency {args.concurrency}; "
        f"{raw_before:.0f} before, {raw_after:.0f} after the drain)"
    )
    print(
        f"herald drain of {total} ({args.endpoints} endpoints, {args.workers} x pool "
        f"{args.pool}, {args.concurrency // args.workers} senders): {herald:.0f} deliveries/s "
        f"in {finished - started:.1f} s"
    )
    print(f"ratio herald/raw = {herald / raw:.2f} (target >= 0.6)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "receiver":
        run_receiver(int(sys.argv[2]))
    else:
        main()
