"""Ingest throughput: POST /api/v1/app/{app}/msg (1 KB payload, one matching endpoint) on
Herald vs a bare Flask route (bench/bare_app.py), both under the same gunicorn.conf.py.

Run from the repo root: `.venv/bin/python -m bench.ingest`. Settings (environment):
BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/herald_bench_ingest, dropped
and re-created), BENCH_REDIS_URL (redis://127.0.0.1:6379/9, flushed), BENCH_DURATION (10 s
per server, in BENCH_ROUNDS=5 alternating slices), BENCH_PROCS (2) x BENCH_THREADS (4) client
connections, WEB_CONCURRENCY, HERALD_WORKER_CLASS and HERALD_WEB_THREADS (gunicorn.conf.py
defaults: 2 x cores + 1 sync workers), BENCH_IDEMPOTENCY (1: a fresh idempotency-key per
request, as the SDK sends).
No Celery worker runs: publishing to Redis is part of ingest, delivery is not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_bench_ingest"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
DURATION = float(os.environ.get("BENCH_DURATION", "10"))
PROCS = int(os.environ.get("BENCH_PROCS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
IDEMPOTENCY = os.environ.get("BENCH_IDEMPOTENCY", "1") == "1"
APP_UID = "bench-app"
BODY = {
    "eventType": "invoice.paid",
    "payload": {"id": "inv_0001", "amount": 4200, "currency": "EUR", "note": "x" * 940},
}


def prepare_database() -> str:
    """Re-create the bench database (migrations, one app, one matching endpoint); a token."""
    parsed = make_url(DATABASE_URL)
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')
    from flask_migrate import upgrade

    from api import create_app
    from api.extensions import db, get_redis
    from api.models import Application, Endpoint
    from api.services.tokens import create_token

    app = create_app(
        {"ENV": "testing", "SQLALCHEMY_DATABASE_URI": DATABASE_URL, "REDIS_URL": REDIS_URL}
    )
    with app.app_context():
        upgrade()
        get_redis().flushdb()
        org, token = create_token("bench")
        application = Application(org_id=org.id, name="Bench", uid=APP_UID)
        db.session.add(application)
        db.session.flush()
        db.session.add(
            Endpoint(
                app_id=application.id,
                url="https://127.0.0.1:9/hook",
                secret="whsec_" + "A" * 32,
                event_types=["invoice.paid"],
            )
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return token


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(wsgi: str) -> Iterator[str]:
    """`gunicorn -c gunicorn.conf.py <wsgi>` on a free port until the block ends."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as run_dir:
        env = {
            **os.environ,
            "PORT": str(port),
            "HERALD_RUN_DIR": run_dir,
            "HERALD_PIDFILE": f"{run_dir}/gunicorn.pid",
            "HERALD_ENV": "testing",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "HERALD_LOG_LEVEL": "warning",
        }
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", wsgi],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process)
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll the ping route until it answers (or the server died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"{base}/api/v1/health/ping", timeout=1).status_code == 204:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{base} did not become ready in {timeout:.0f} s")


def client(base: str, token: str, duration: float, threads: int) -> tuple[int, int]:
    """One load process: `threads` keep-alive sessions POSTing for `duration` s; (ok, failed)."""
    url = f"{base}/api/v1/app/{APP_UID}/msg"
    counts = [[0, 0] for _ in range(threads)]
    stop = time.monotonic() + duration

    def run(slot: list[int]) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            while time.monotonic() < stop:
                headers = {"idempotency-key": f"auto_{uuid.uuid4()}"} if IDEMPOTENCY else None
                try:
                    ok = session.post(url, json=BODY, headers=headers, timeout=10).status_code
                    slot[0 if ok == 202 else 1] += 1
                except requests.RequestException:
                    slot[1] += 1

    workers = [threading.Thread(target=run, args=(slot,)) for slot in counts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def drive(pool: ProcessPoolExecutor, base: str, token: str, seconds: float) -> tuple[int, float]:
    """Load `base` from every client process for `seconds`; (successful requests, elapsed)."""
    started = time.monotonic()
    results = list(
        pool.map(client, [base] * PROCS, [token] * PROCS, [seconds] * PROCS, [THREADS] * PROCS)
    )
    elapsed = time.monotonic() - started
    failed = sum(r[1] for r in results)
    if failed:
        print(f"  warning: {failed} requests to {base} failed", flush=True)
    return sum(r[0] for r in results), elapsed


def measure(bare: str, herald: str, token: str) -> tuple[float, float]:
    """Warm both up, then alternate ROUNDS slices of DURATION s each (so drift in the
    machine's load hits both alike); req/s of (bare, herald)."""
    totals = {bare: [0, 0.0], herald: [0, 0.0]}
    with ProcessPoolExecutor(PROCS) as pool:
        for base in (bare, herald):
            drive(pool, base, token, 1.0)
        for _ in range(ROUNDS):
            for base in (bare, herald):
                ok, elapsed = drive(pool, base, token, DURATION / ROUNDS)
                totals[base][0] += ok
                totals[base][1] += elapsed
    return totals[bare][0] / totals[bare][1], totals[herald][0] / totals[herald][1]


def count_rows() -> tuple[int, int]:
    """(messages, deliveries) stored in the bench database."""
    url = make_url(DATABASE_URL).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        messages = conn.execute("SELECT count(*) FROM message").fetchone()
        deliveries = conn.execute("SELECT count(*) FROM delivery").fetchone()
    return int(messages[0]), int(deliveries[0])  # type: ignore[index]


def main() -> int:
    """Serve both apps, load them alternately, print req/s and the ratio."""
    token = prepare_database()
    settings = (
        f"{DURATION:.0f} s each in {ROUNDS} alternating rounds, "
        f"{PROCS}x{THREADS} client connections, "
        f"WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY') or 2 * (os.cpu_count() or 1) + 1}, "
        f"worker_class={os.environ.get('HERALD_WORKER_CLASS', 'sync')}, "
        f"idempotency-key={'on' if IDEMPOTENCY else 'off'}"
    )
    print(f"ingest: {settings}", flush=True)
    with serve("bench.bare_app:app") as bare_url, serve("api:create_app()") as herald_url:
        bare, herald = measure(bare_url, herald_url, token)
    messages, deliveries = count_rows()
    print(f"  bare Flask route : {bare:8.1f} req/s", flush=True)
    print(
        f"  herald ingest    : {herald:8.1f} req/s  ({messages} messages, "
        f"{deliveries} deliveries stored)",
        flush=True,
    )
    ratio = herald / bare if bare else 0.0
    print(f"  ratio herald/bare: {ratio:.2f} (target >= 0.50)", flush=True)
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()  # drop the deliver tasks nobody will consume
    return 0


if __name__ == "__main__":
    sys.exit(main())
