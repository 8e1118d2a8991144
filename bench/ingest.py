"""Ingest throughput: POST /api/v1/app/{app}/msg (1 KB payload, one matching endpoint) on
Herald vs a bare Flask route (bench/bare_app.py), both under the same gunicorn.conf.py.

Run from the repo root: `.venv/bin/python -m bench.ingest`. The load comes from `wrk` (a C
generator, Debian's package: installed with apt-get when missing and running as root), 2
threads x 16 connections (BENCH_CONNECTIONS), BENCH_DURATION (10 s) per server per scenario,
in BENCH_ROUNDS (2) alternating slices. Two scenarios: no idempotency key, and a fresh
`idempotency-key` per request (as the SDK sends). Each prints req/s, p99 latency and the CPU
milliseconds per request of the gunicorn workers, PostgreSQL and Redis (from /proc), and the
ratio to the bare route measured in the same run. BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/herald_bench_ingest, dropped and re-created),
BENCH_REDIS_URL (redis://127.0.0.1:6379/9, flushed); WEB_CONCURRENCY, HERALD_WORKER_CLASS and
HERALD_WEB_THREADS as gunicorn.conf.py reads them. No Celery worker runs: delivery is not part
of ingest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests
from sqlalchemy.engine import make_url

from bench.api_delivery import CPU, by_name, tree

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_bench_ingest"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
DURATION = float(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
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
def serve(wsgi: str) -> Iterator[tuple[str, list[int]]]:
    """`gunicorn -c gunicorn.conf.py <wsgi>` on a free port until the block ends: its base URL
    and the pids of its master and workers."""
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
            yield base, tree(process.pid)
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


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[BODY]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
local counter, keyed, prefix = 0, KEYED, "auto_" .. tostring(os.time()) .. "_"
function setup(thread) thread:set("tid", tostring(math.random(1000000000))) end
function request()
  if not keyed then return wrk.format() end
  counter = counter + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["idempotency-key"] = prefix .. tid .. "_" .. counter
  return wrk.format(nil, nil, headers)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(99)))
end
"""


def wrk_binary() -> str:
    """wrk's path; installed from Debian's package when missing (as root), else exit."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench.ingest needs wrk: apt-get install wrk")
    return found


def drive(base: str, token: str, seconds: float, keyed: bool) -> tuple[int, float, float]:
    """wrk against `base` for `seconds`: (successful requests, elapsed s, p99 latency ms)."""
    script = (
        WRK_SCRIPT.replace("BODY", json.dumps(BODY))
        .replace("TOKEN", token)
        .replace("KEYED", "true" if keyed else "false")
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            [
                wrk_binary(),
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{seconds:.0f}s",
                "-s",
                handle.name,
                f"{base}/api/v1/app/{APP_UID}/msg",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    total, errors, elapsed, p99_us = line.split()[1:]
    if int(errors):
        print(f"  warning: {errors} requests to {base} failed", flush=True)
    return int(total) - int(errors), float(elapsed), int(p99_us) / 1000


def measure(
    servers: dict[str, tuple[str, list[int]]], token: str, keyed: bool
) -> dict[str, dict[str, float]]:
    """Alternate ROUNDS slices of DURATION s on each server (drift hits both alike): req/s,
    p99 ms and CPU ms per request of its gunicorn workers, PostgreSQL and Redis."""
    totals = {
        name: {"ok": 0.0, "s": 0.0, "p99": 0.0, "web": 0.0, "pg": 0.0, "redis": 0.0}
        for name in servers
    }
    for base, _ in servers.values():
        drive(base, token, 1.0, keyed)  # warm up
    for _ in range(ROUNDS):
        for name, (base, pids) in servers.items():
            roles = {
                "web": lambda p=pids: p,
                "pg": lambda: by_name("postgres"),
                "redis": lambda: by_name("redis-server"),
            }
            cpu = CPU(roles)
            before = cpu.sample()
            ok, elapsed, p99 = drive(base, token, DURATION / ROUNDS, keyed)
            after = cpu.sample()
            row = totals[name]
            row["ok"] += ok
            row["s"] += elapsed
            row["p99"] = max(row["p99"], p99)
            for role in roles:
                row[role] += after[role] - before[role]
    return {
        name: {
            "rate": row["ok"] / row["s"],
            "p99": row["p99"],
            **{role: row[role] * 1000 / max(row["ok"], 1) for role in ("web", "pg", "redis")},
        }
        for name, row in totals.items()
    }


def count_rows() -> tuple[int, int]:
    """(messages, deliveries) stored in the bench database."""
    url = make_url(DATABASE_URL).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        messages = conn.execute("SELECT count(*) FROM message").fetchone()
        deliveries = conn.execute("SELECT count(*) FROM delivery").fetchone()
    return int(messages[0]), int(deliveries[0])  # type: ignore[index]


def main() -> int:
    """Serve both apps, load them alternately with wrk, print the figures and the ratios."""
    token = prepare_database()
    print(
        f"ingest: wrk -t2 -c{CONNECTIONS}, {DURATION:.0f} s per server and scenario in {ROUNDS} "
        f"alternating slices, WEB_CONCURRENCY="
        f"{os.environ.get('WEB_CONCURRENCY') or 'default'}, worker_class="
        f"{os.environ.get('HERALD_WORKER_CLASS', 'gevent')}",
        flush=True,
    )
    with serve("bench.bare_app:app") as bare, serve("api:create_app()") as herald:
        servers = {"bare": bare, "herald": herald}
        for keyed in (False, True):
            figures = measure(servers, token, keyed)
            print(f"  idempotency-key {'on' if keyed else 'off'}:", flush=True)
            for name, f in figures.items():
                print(
                    f"    {name:6s}: {f['rate']:7.1f} req/s, p99 {f['p99']:6.1f} ms; "
                    f"CPU ms/request: web {f['web']:.2f}  postgres {f['pg']:.2f}  "
                    f"redis {f['redis']:.2f}",
                    flush=True,
                )
            ratio = figures["herald"]["rate"] / figures["bare"]["rate"]
            target = 0.25 if keyed else 0.30
            print(f"    ratio herald/bare: {ratio:.2f} (target >= {target:.2f})", flush=True)
    messages, deliveries = count_rows()
    print(f"  stored: {messages} messages, {deliveries} deliveries", flush=True)
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()  # drop the wake-ups nobody will consume
    return 0


if __name__ == "__main__":
    sys.exit(main())
