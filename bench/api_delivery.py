"""Delivery through the path users take: messages POSTed to the API, the Procfile's processes.

`python -m bench.api_delivery [--messages 3000] [--scenarios a,b,c,d]`

The Procfile's `web`, `worker` and `scheduler` commands run as shipped, with the default
settings (lease, dispatch interval, timeouts; production environment, loopback whitelisted so
the local receiver may be reached). Messages are POSTed to `/api/v1/app/{app}/msg` by a
separate producer process (8 keep-alive threads); a keep-alive receiver runs in its own process.

Scenarios: (a) one endpoint, messages posted while the worker runs; (b) one endpoint, a backlog
posted while the worker is stopped, then the worker started; (c) sparse: 500 apps with one
endpoint each, messages round-robin; (d) fan-out: one app, 50 endpoints; (e) latency, accept
(the 202) -> received at a steady 100 msg/s to one endpoint (target p95 <= 50 ms); (f) fan-out
1 -> 100 endpoints, the last arrival after the 202 over 20 rounds (target p95 <= 500 ms);
(g) isolation: 10 healthy endpoints beside an 11th that is healthy, then never answers in
time, then healthy again (target: the dead endpoint costs the healthy ones <= 10%).

Each prints deliveries/s (requests the receiver got over the window from the first POST to
the last arrival; (b) from its first arrival, the worker starting after the posts), the CPU
milliseconds per delivery of every process (from /proc: web, worker, scheduler, PostgreSQL,
Redis, producer), and the same run's baseline: a raw `requests.Session` loop (16 threads,
keep-alive, the same body and signing work) to the same receiver, in its own process, with
its CPU per request; then the ratios (issue 9 targets: throughput >= 0.6 x raw in a, b, d and
>= 0.5 x in c; worker CPU per delivery <= 2 x the raw client's per request).
Database herald_bench_api, Redis db 11.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.delivery import BODY, SECRET, bench_app, received, receiver, reset_database

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get(
    "BENCH_API_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_bench_api"
)
REDIS_URL = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/11")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if command.strip():
            entries[name.strip()] = command.strip()
    return entries


# --- CPU accounting from /proc ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and of its reaped children (seconds)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK  # utime stime cutime cstime


def tree(pid: int) -> list[int]:
    """The process and its live descendants."""
    found, frontier = [pid], [pid]
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    while frontier:
        nxt = [c for p in frontier for c in children.get(p, [])]
        found += nxt
        frontier = nxt
    return found


def by_name(name: str) -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


class CPU:
    """CPU seconds per role, sampled at the start and the end of a window."""

    def __init__(self, roles: dict[str, Any]) -> None:
        self.roles = roles  # name -> callable returning pids

    def sample(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids()) for name, pids in self.roles.items()}


# --- the stack ----------------------------------------------------------------------------------


class Stack:
    """The Procfile's web, worker and scheduler on the bench database (default settings)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEST_"))},
            "HERALD_ENV": "production",
            "HERALD_SECRET_KEY": "bench",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "PORT": str(port),
            "HERALD_WHITELIST_SUBNETS": "127.0.0.0/8",  # the receiver is local
            "HERALD_RUN_DIR": f"/tmp/herald-bench-api-{os.getpid()}",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log = open(f"/tmp/herald-bench-api-{os.getpid()}.log", "ab")

    def start(self, name: str) -> None:
        command = procfile()[name]
        if name == "scheduler":  # a schedule file of its own
            command = command.replace("var/celerybeat-schedule", f"/tmp/hb-{os.getpid()}")
        self.procs[name] = subprocess.Popen(
            shlex.split(command),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_web(self) -> None:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        for _ in range(600):
            try:
                if requests.get(url, timeout=5).status_code == 204:
                    return
            except requests.RequestException:  # not listening yet, or still booting
                pass
            time.sleep(0.1)
        raise SystemExit("web never healthy")

    def pids(self, name: str) -> list[int]:
        proc = self.procs.get(name)
        return tree(proc.pid) if proc and proc.poll() is None else []

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


# --- producer and raw loop (separate processes) -------------------------------------------------


def produce(base: str, token: str, apps: list[str], count: int, threads: int) -> None:
    """POST `count` messages round-robin over `apps` with `threads` keep-alive sessions."""
    counter = iter(range(count))
    lock = threading.Lock()
    payload = json.loads(BODY)

    def work() -> None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}"})
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            body = {"eventType": "invoice.paid", "payload": payload}
            response = session.post(f"{base}/api/v1/app/{apps[i % len(apps)]}/msg", json=body)
            if response.status_code != 202:
                raise SystemExit(f"POST /msg answered {response.status_code}: {response.text}")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def produce_at_rate(base: str, token: str, app: str, rate: float, seconds: float) -> None:
    """POST at a steady `rate` for `seconds` (8 threads); prints {msg id: wall time of the 202}."""
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    accepted: dict[str, float] = {}
    payload = json.loads(BODY)

    def post(_: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update({"Authorization": f"Bearer {token}"})
        body = {"eventType": "invoice.paid", "payload": payload}
        response = local.session.post(f"{base}/api/v1/app/{app}/msg", json=body)
        at = time.time()
        if response.status_code == 202:
            accepted[response.json()["id"]] = at

    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        for i in range(int(rate * seconds)):
            pause = started + i / rate - time.time()
            if pause > 0:
                time.sleep(pause)
            pool.submit(post, i)
    print(json.dumps(accepted))


def raw(url: str, total: int, threads: int) -> None:
    """The baseline: prints req/s and this process's CPU ms per request."""
    from bench.delivery import raw_loop

    cpu = cpu_seconds(os.getpid())
    rate = raw_loop(url, total, threads)
    used = cpu_seconds(os.getpid()) - cpu
    print(json.dumps({"rate": rate, "cpu_ms": used * 1000 / total}))


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.api_delivery", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def raw_baseline(base: str, total: int) -> tuple[float, float]:
    done = spawn("raw", f"{base}/raw", str(total), "16")
    out, _ = done.communicate(timeout=600)
    figures = json.loads(out.strip().splitlines()[-1])
    return float(figures["rate"]), float(figures["cpu_ms"])


# --- scenarios ----------------------------------------------------------------------------------


def setup(port: int, receiver_base: str, apps: int, endpoints: int) -> tuple[str, list[str]]:
    """A token, then apps and endpoints created through the API; returns (token, app uids)."""
    from api.services import tokens

    app = bench_app(SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=REDIS_URL)
    with app.app_context():
        _, token = tokens.create_token(f"bench-{time.time()}")
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}"})
    api = f"http://127.0.0.1:{port}/api/v1"
    session.post(f"{api}/event-type", json={"name": "invoice.paid", "description": "bench"})
    uids = []
    for a in range(apps):
        uid = f"bench-{a}-{int(time.time() * 1000)}"
        assert session.post(f"{api}/app", json={"name": uid, "uid": uid}).status_code == 201
        for e in range(endpoints):
            made = session.post(
                f"{api}/app/{uid}/endpoint",
                json={"url": f"{receiver_base}/ep{a}-{e}", "secret": SECRET},
            )
            assert made.status_code == 201, made.text
        uids.append(uid)
    return token, uids


def run_scenario(
    name: str, stack: Stack, base: str, apps: int, endpoints: int, messages: int
) -> dict[str, Any]:
    """One scenario on a fresh database; returns its figures."""
    port = stack.port
    token, uids = setup(port, base, apps, endpoints)
    expected = messages * endpoints
    requests.delete(base + "/stats", timeout=5)
    roles = {
        "web": lambda: stack.pids("web"),
        "worker": lambda: stack.pids("worker"),
        "scheduler": lambda: stack.pids("scheduler"),
        "postgres": lambda: by_name("postgres"),
        "redis": lambda: by_name("redis-server"),
    }
    cpu = CPU(roles)
    backlog = name == "b"
    if backlog:
        stack.stop("worker")
    before = cpu.sample()
    started = time.time()
    producer = spawn("produce", f"http://127.0.0.1:{port}", token, ",".join(uids), str(messages))
    posted_rate = 0.0
    if backlog:
        producer.wait(600)
        posted_rate = messages / (time.time() - started)
        worker_from = cpu.sample()["worker"]
        stack.start("worker")
        started = time.time()
    deadline = time.time() + 900
    rss_warm = 0.0  # the worker's RSS once a tenth was delivered (warmed up)
    while time.time() < deadline:
        count = sum(received(base).values())
        if not rss_warm and count >= expected / 10:
            rss_warm = rss_mb(stack.pids("worker"))
        if count >= expected:
            break
        time.sleep(0.2)
    finished = time.time()
    producer.wait(600)
    after = cpu.sample()
    times = sorted(t for per_path in received(base, "/times").values() for t in per_path)
    got = len(times)
    first, last = (times[0], times[-1]) if times else (finished, finished)
    window = last - (first if backlog else started)
    used = {role: after[role] - before[role] for role in roles}
    if backlog:  # the worker ran only after the backlog was posted
        used["worker"] = after["worker"] - worker_from
    return {
        "name": name,
        "expected": expected,
        "received": got,
        "rate": got / window if window > 0 else 0.0,
        "cpu_ms": {role: used[role] * 1000 / max(got, 1) for role in roles},
        "seconds": finished - started,
        "rss_warm_mb": rss_warm,
        "posted_rate": posted_rate,
    }


def latency_scenario(stack: Stack, base: str, rate: float, seconds: float) -> dict[str, Any]:
    """(e) accept (the 202) -> received at a steady rate to one endpoint: percentiles in ms."""
    token, uids = setup(stack.port, base, 1, 1)
    requests.delete(base + "/stats", timeout=5)
    producer = spawn(
        "produce_at_rate", f"http://127.0.0.1:{stack.port}", token, uids[0], str(rate), str(seconds)
    )
    out, _ = producer.communicate(timeout=seconds + 120)
    accepted: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    deadline = time.time() + 60
    while time.time() < deadline and len(received(base, "/ids")) < len(accepted):
        time.sleep(0.2)
    arrivals = received(base, "/ids")
    lat = sorted((arrivals[m] - t) * 1000 for m, t in accepted.items() if m in arrivals)
    return {"sent": int(rate * seconds), "accepted": len(accepted), "arrived": len(lat), "ms": lat}


def fanout_scenario(stack: Stack, base: str, endpoints: int, rounds: int) -> dict[str, Any]:
    """(f) one message to `endpoints` endpoints, `rounds` times: last arrival - the 202, ms."""
    token, uids = setup(stack.port, base, 1, endpoints)
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}"})
    lasts = []
    for _ in range(rounds):
        requests.delete(base + "/stats", timeout=5)
        body = {"eventType": "invoice.paid", "payload": json.loads(BODY)}
        response = session.post(
            f"http://127.0.0.1:{stack.port}/api/v1/app/{uids[0]}/msg", json=body
        )
        accepted = time.time()
        assert response.status_code == 202, response.text
        deadline = time.time() + 60
        while sum(received(base).values()) < endpoints and time.time() < deadline:
            time.sleep(0.01)
        times = [t for per_path in received(base, "/times").values() for t in per_path]
        lasts.append((max(times) - accepted) * 1000 if len(times) >= endpoints else float("inf"))
        time.sleep(0.5)
    return {"ms": sorted(lasts)}


def isolation_scenario(stack: Stack, base: str, messages: int) -> dict[str, Any]:
    """(g) one app, 10 healthy endpoints and an 11th: healthy first, then pointed at a URL that
    never answers within the request timeout, then healthy again (A B A, one stack). The same
    work each time; what the dead one costs the 10 others is the drop of their deliveries/s."""
    token, uids = setup(stack.port, base, 1, 10)
    web = f"http://127.0.0.1:{stack.port}"
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}"})
    extra = session.post(
        f"{web}/api/v1/app/{uids[0]}/endpoint", json={"url": f"{base}/extra", "secret": SECRET}
    )
    assert extra.status_code == 201, extra.text
    extra_url = f"{web}/api/v1/app/{uids[0]}/endpoint/{extra.json()['id']}"

    def healthy_rate(eleventh: str) -> float:
        assert session.patch(extra_url, json={"url": f"{base}{eleventh}"}).status_code == 200
        requests.delete(base + "/stats", timeout=5)
        started = time.time()
        producer = spawn("produce", web, token, uids[0], str(messages))

        def counted() -> list[float]:
            return [
                t
                for path, ts in received(base, "/times").items()
                if path.startswith("/ep")
                for t in ts
            ]

        deadline = time.time() + 600
        while time.time() < deadline and len(counted()) < messages * 10:
            time.sleep(0.2)
        producer.wait(600)
        times = counted()
        return len(times) / (max(times) - started)

    alone = healthy_rate("/extra")
    beside_dead = healthy_rate("/hang")
    again = healthy_rate("/extra")
    return {"alone": alone, "beside_dead": beside_dead, "again": again}


def pct(values: list[float], p: float) -> float:
    from bench.delivery import percentile

    return percentile(values, p) if values else float("nan")


SCENARIOS = {
    "a": ("one endpoint, posted while the worker runs", 1, 1, 1.0),
    "b": ("one endpoint, backlog posted with the worker stopped", 1, 1, 1.0),
    "c": ("500 apps x 1 endpoint, round-robin", 500, 1, 1.0),
    "d": ("fan-out: 1 app x 50 endpoints", 1, 50, 1 / 50),
    "e": ("latency: accept -> received at a steady 100 msg/s, one endpoint", 1, 1, 0),
    "f": ("fan-out 1 -> 100 endpoints, last arrival, 20 rounds", 1, 100, 0),
    "g": (
        "isolation: 10 healthy endpoints beside an 11th healthy / timing out / healthy",
        1,
        10,
        0,
    ),
}


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes (MB, from /proc/<pid>/status)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000, help="deliveries per scenario")
    parser.add_argument("--scenarios", default="a,b,c,d,e,f,g")
    args = parser.parse_args()
    app = bench_app(SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=REDIS_URL)
    results = []
    with receiver() as base:
        raw_before = raw_baseline(base, min(args.messages, 3000))
        for key in args.scenarios.split(","):
            title, apps, endpoints, per = SCENARIOS[key]
            reset_database(app)
            stack = Stack(free_port())
            try:
                for name in ("web", "worker", "scheduler"):
                    stack.start(name)
                stack.wait_web()
                time.sleep(3)  # worker and beat connected
                if key == "e":
                    figures = latency_scenario(stack, base, 100.0, 20.0)
                elif key == "f":
                    figures = fanout_scenario(stack, base, 100, 20)
                elif key == "g":
                    figures = isolation_scenario(stack, base, max(1, args.messages // 10))
                else:
                    figures = run_scenario(
                        key, stack, base, apps, endpoints, max(1, int(args.messages * per))
                    )
                    figures["rss_mb"] = rss_mb(stack.pids("worker"))
            finally:
                stack.stop_all()
            figures["name"] = key
            figures["title"] = title
            results.append(figures)
        raw_after = raw_baseline(base, min(args.messages, 3000))
    raw_rate = (raw_before[0] + raw_after[0]) / 2
    raw_cpu = (raw_before[1] + raw_after[1]) / 2
    print(
        f"raw requests.Session loop (16 threads, keep-alive, own process): {raw_rate:.0f} req/s, "
        f"{raw_cpu:.2f} ms CPU/request ({raw_before[0]:.0f} / {raw_after[0]:.0f} req/s before / "
        f"after the scenarios)"
    )
    ingest = next((r["posted_rate"] for r in results if r.get("posted_rate")), 0.0)
    if ingest:
        print(
            f"ingest alone ((b)'s posting, worker stopped): {ingest:.0f} messages/s — the ceiling "
            f"of (a) and (c), where every delivery is a message posted during the run"
        )
    for r in results:
        if r["name"] == "e":
            ms = r["ms"]
            print(
                f"(e) {r['title']}: {r['arrived']}/{r['accepted']} arrived ({r['sent']} sent); "
                f"min {ms[0] if ms else float('nan'):.1f} ms, p50 {pct(ms, 50):.1f} ms, "
                f"p95 {pct(ms, 95):.1f} ms, p99 {pct(ms, 99):.1f} ms (target p95 <= 50 ms; the "
                f"clock starts when the producer has the 202, so a delivery that outruns the "
                f"response counts below zero)"
            )
            continue
        if r["name"] == "g":
            healthy = (r["alone"] + r["again"]) / 2
            print(
                f"(g) {r['title']}: {r['alone']:.0f} / {r['beside_dead']:.0f} / {r['again']:.0f} "
                f"healthy deliveries/s; loss beside the dead endpoint "
                f"{(1 - r['beside_dead'] / healthy) * 100:.0f}% (target <= 10%)"
            )
            continue
        if r["name"] == "f":
            ms = r["ms"]
            print(
                f"(f) {r['title']}: p50 {pct(ms, 50):.0f} ms, p95 {pct(ms, 95):.0f} ms, "
                f"max {ms[-1]:.0f} ms (target p95 <= 500 ms)"
            )
            continue
        cpu = "  ".join(f"{role} {ms:.2f}" for role, ms in r["cpu_ms"].items())
        print(
            f"({r['name']}) {r['title']}: {r['rate']:.0f} deliveries/s "
            f"({r['received']}/{r['expected']} requests in {r['seconds']:.1f} s); "
            f"CPU ms/delivery: {cpu}; worker RSS {r['rss_warm_mb']:.0f} MB at a tenth, "
            f"{r['rss_mb']:.0f} MB after ({(r['rss_mb'] / r['rss_warm_mb'] - 1) * 100:+.0f}%)"
        )
        cores = os.cpu_count() or 1
        # (b)'s posting ran before the drain window: the drain's ceiling leaves the web out
        spent = {k: v for k, v in r["cpu_ms"].items() if not (r["name"] == "b" and k == "web")}
        ceiling = cores * 1000 / sum(spent.values())
        of_ingest = (
            f"; of the ingest ceiling {r['rate'] / ingest:.2f}"
            if ingest and r["name"] in ("a", "c")
            else ""
        )
        print(
            f"    ratio throughput herald/raw = {r['rate'] / raw_rate:.2f}; worker CPU per "
            f"delivery / raw CPU per request = {r['cpu_ms']['worker'] / raw_cpu:.1f}; CPU "
            f"ceiling ({cores} cores / the CPU per delivery of the window) {ceiling:.0f}/s, "
            f"reached {r['rate'] / ceiling:.2f}{of_ingest}"
        )


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5]), 8)
    elif command == "produce_at_rate":
        produce_at_rate(
            sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
        )
    elif command == "raw":
        raw(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
