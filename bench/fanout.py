"""Fan-out: one message to 100 endpoints; time until the last copy arrives (target p95 <= 1 s).

`python -m bench.fanout [--endpoints 100] [--rounds 20]`: each round accepts one message for
every endpoint (one commit, 100 published deliveries) and waits for all copies.
"""

from __future__ import annotations

import argparse
import time

from bench.delivery import (
    Processes,
    accept,
    app_of,
    bench_app,
    percentile,
    received,
    receiver,
    reset_database,
    seed,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    app = bench_app()
    reset_database(app)
    lasts: list[float] = []
    firsts: list[float] = []
    with receiver() as base:
        endpoints = seed(app, [f"{base}/ep{i}" for i in range(args.endpoints)], 0)
        app_id, org_id = app_of(app, endpoints[0])
        with Processes(args.pool, args.concurrency):
            for _ in range(args.rounds):
                before = sum(received(base).values())
                msg_id, accepted = accept(app, app_id, org_id, endpoints)
                deadline = time.time() + 30
                while sum(received(base).values()) < before + args.endpoints:
                    if time.time() > deadline:
                        raise SystemExit("fan-out round timed out")
                    time.sleep(0.01)
                times = [t for ts in received(base, "/times").values() for t in ts[-1:]]
                lasts.append((max(times) - accepted) * 1000)
                firsts.append((received(base, "/ids")[msg_id] - accepted) * 1000)
                time.sleep(0.5)
    print(
        f"fan-out 1 -> {args.endpoints} endpoints, {args.rounds} rounds, "
        f"pool {args.pool} -c {args.concurrency}"
    )
    print(f"  first copy: p50 {percentile(firsts, 50):.0f} ms")
    for pct in (50, 95, 100):
        print(f"  last copy p{pct}: {percentile(lasts, pct):.0f} ms")
    p95 = percentile(lasts, 95)
    print(
        f"last-arrival p95 {p95:.0f} ms vs target 1000 ms: ratio {p95 / 1000:.2f} "
        f"({'met' if p95 <= 1000 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
