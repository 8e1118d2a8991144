"""Isolation: healthy endpoints' throughput with and without one endpoint that times out.

`python -m bench.isolation [--healthy 6000] [--bad 300]`: phase A drains a healthy backlog
(10 endpoints); phase B drains the same backlog while one more endpoint holds `--bad`
deliveries that never answer within REQUEST_TIMEOUT (15 s). Runs A B A B A (`--rounds 2`), so
the machine's drift hits both alike. Target: mean(B) >= 0.9 x mean(A).
"""

from __future__ import annotations

import argparse
import time

import requests

from bench.delivery import (
    Processes,
    bench_app,
    make_due,
    received,
    receiver,
    reset_database,
    seed,
)


def drain(healthy: int, bad: int, pool: str, concurrency: int) -> tuple[float, int]:
    """Healthy deliveries/s while `bad` deliveries target a hanging endpoint; bad attempts."""
    app = bench_app()
    reset_database(app)
    with receiver() as base:
        seed(app, [f"{base}/ep{i}" for i in range(10)], healthy // 10)
        if bad:
            seed(app, [f"{base}/hang"], bad)
        requests.delete(base + "/stats", timeout=5)
        with Processes(pool, concurrency):
            started = make_due(app)
            total = 10 * (healthy // 10)
            deadline = started + 300
            while time.time() < deadline:
                counts = received(base)
                if sum(v for k, v in counts.items() if k != "/hang") >= total:
                    break
                time.sleep(0.1)
            finished = time.time()
        from sqlalchemy import text

        from api.extensions import db

        with app.app_context():
            bad_attempts = db.session.execute(
                text("SELECT count(*) FROM message_attempt WHERE url LIKE '%/hang'")
            ).scalar_one()
    return total / (finished - started), int(bad_attempts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--healthy", type=int, default=6000)  # ~10 s: shorter drains are noise
    parser.add_argument("--bad", type=int, default=300)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="B phases (A runs one more)")
    args = parser.parse_args()
    alone_runs: list[float] = []
    shared_runs: list[float] = []
    bad_attempts = 0
    for phase in range(2 * args.rounds + 1):
        if phase % 2 == 0:
            alone_runs.append(drain(args.healthy, 0, args.pool, args.concurrency)[0])
        else:
            rate, bad_attempts = drain(args.healthy, args.bad, args.pool, args.concurrency)
            shared_runs.append(rate)
    alone = sum(alone_runs) / len(alone_runs)
    shared = sum(shared_runs) / len(shared_runs)
    print(
        f"healthy alone: {', '.join(f'{r:.0f}' for r in alone_runs)} deliveries/s "
        f"(mean {alone:.0f}); with a timing-out endpoint ({args.bad} queued, {bad_attempts} "
        f"timed-out attempts in the last run): {', '.join(f'{r:.0f}' for r in shared_runs)} "
        f"(mean {shared:.0f})"
    )
    loss = 1 - shared / alone
    print(
        f"ratio {shared / alone:.2f}, throughput loss {loss:.0%} vs target <= 10% "
        f"({'met' if loss <= 0.10 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
