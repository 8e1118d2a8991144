"""End-to-end latency, accept -> received, at a steady 100 msg/s (target p95 <= 120 ms).

`python -m bench.latency [--rate 100] [--seconds 20]`: messages are accepted the way the
messages API does it (commit, then publish `herald.deliver`); the receiver stamps arrivals.
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
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    app = bench_app()
    reset_database(app)
    with receiver() as base:
        endpoints = seed(app, [f"{base}/ep{i}" for i in range(args.endpoints)], 0)
        app_id, org_id = app_of(app, endpoints[0])
        accepted: dict[str, float] = {}
        with Processes(args.pool, args.concurrency):
            total = int(args.rate * args.seconds)
            started = time.time()
            late = 0
            for i in range(total):
                due = started + i / args.rate
                pause = due - time.time()
                if pause > 0:
                    time.sleep(pause)
                else:
                    late += 1
                msg_id, at = accept(app, app_id, org_id, [endpoints[i % len(endpoints)]])
                accepted[msg_id] = at
            offered = total / (time.time() - started)
            deadline = time.time() + 30
            while time.time() < deadline and len(received(base, "/ids")) < total:
                time.sleep(0.2)
            arrivals = received(base, "/ids")
    latencies = [(arrivals[m] - t) * 1000 for m, t in accepted.items() if m in arrivals]
    print(
        f"offered {offered:.1f} msg/s for {args.seconds:.0f} s ({late} sends behind "
        f"schedule); delivered {len(latencies)}/{total}; pool {args.pool} -c {args.concurrency}"
    )
    for pct in (50, 90, 95, 99, 100):
        print(f"  p{pct}: {percentile(latencies, pct):.1f} ms")
    p95 = percentile(latencies, 95)
    print(
        f"p95 {p95:.1f} ms vs target 120 ms: ratio {p95 / 120:.2f} "
        f"({'met' if p95 <= 120 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
