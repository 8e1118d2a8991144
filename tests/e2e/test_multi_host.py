"""Several hosts: two web tiers (two gunicorn masters on two ports), two Celery workers and two
schedulers (`beat` on each "host", as operators do by mistake), one PostgreSQL and one Redis.

Messages are posted to both web tiers at once. At the receiver: every message delivered to
every endpoint it was routed to, duplicates within 1 %, no endpoint ever sees more than
HERALD_ENDPOINT_CONCURRENCY (4) requests in flight although both workers deliver, a
throttled endpoint never above its throttleRate, and a failed attempt retried once per
message by the two dispatchers (no double dispatch). Default lease, dispatch and timeout
settings.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from api.extensions import db
from api.models import MessageAttempt
from api.services import tokens
from tests.conftest import DATABASE_URL
from tests.e2e.gunicorn_harness import GunicornServer
from tests.e2e.processes import PrivateRedis, Stack
from tests.support import Received, Receiver, eventually

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]

MESSAGES = 120
THROTTLE = 20  # deliveries per second to the throttled endpoint
DELAY = 0.05  # s each answer takes: deliveries to one endpoint overlap
CAP = 4  # HERALD_ENDPOINT_CONCURRENCY's default


@pytest.fixture
def hosts(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[list[GunicornServer]]:
    """Two "hosts", each with its web tier, worker and scheduler, sharing one Redis and one
    PostgreSQL; the web tiers' base URLs."""
    redis_url = private_redis.url
    servers, stacks = [], []
    try:
        for name in ("host-a", "host-b"):
            server = GunicornServer(tmp_path / name, app=None, database_url=DATABASE_URL)
            server.env["REDIS_URL"] = redis_url
            server.start()
            servers.append(server)
            stack = Stack(redis_url, tmp_path / name)
            stack.start("worker")
            stack.start("beat")
            stacks.append(stack)
        yield servers
    finally:
        for stack in stacks:
            stack.stop_all()
        for server in servers:
            server.stop()


def _api(base: str, token: str, method: str, path: str, body: dict[str, Any]) -> Any:
    response = requests.request(
        method, f"{base}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code < 300, (path, response.status_code, response.text)
    return response.json()


def _post_messages(bases: list[str], token: str, app_id: str, event: str, count: int) -> set[str]:
    """`count` messages posted from 4 threads, alternating between the web tiers."""
    ids: set[str] = set()
    lock = threading.Lock()

    def post(worker: int) -> None:
        with requests.Session() as session:
            for n in range(worker, count, 4):
                base = bases[n % len(bases)]
                response = session.post(
                    f"{base}/api/v1/app/{app_id}/msg",
                    json={"eventType": event, "payload": {"n": n}},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                assert response.status_code == 202, response.text
                with lock:
                    ids.add(response.json()["id"])

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(ids) == count
    return ids


def _by_path(receiver: Receiver) -> dict[str, list[Received]]:
    with receiver.lock:
        found: dict[str, list[Received]] = {}
        for request in receiver.requests:
            found.setdefault(request.path, []).append(request)
        return found


def _peak_in_flight(requests_: list[Received]) -> int:
    """The most requests that were being answered at once (each took DELAY s before `at`)."""
    edges = sorted([(r.at - DELAY, 1) for r in requests_] + [(r.at, -1) for r in requests_])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def _most_in_one_second(requests_: list[Received]) -> int:
    times = sorted(r.at for r in requests_)
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_two_hosts_deliver_everything_once_within_caps_and_throttle(
    app: Flask, hosts: list[GunicornServer], receiver: Receiver
) -> None:
    with app.app_context():
        _, token = tokens.create_token("hosts")
    bases = [server.base_url for server in hosts]
    app_id = _api(bases[0], token, "POST", "/app", {"name": "Shop"})["id"]
    for event in ("order.paid", "order.refunded"):
        _api(bases[1], token, "POST", "/event-type", {"name": event, "description": event})
    paths = {"plain": "/plain", "capped": "/capped", "throttled": "/throttled"}
    for name, path in paths.items():
        body: dict[str, Any] = {"url": receiver.url + path, "filterTypes": ["order.paid"]}
        if name == "throttled":
            body["throttleRate"] = THROTTLE
        _api(bases[1], token, "POST", f"/app/{app_id}/endpoint", body)
    receiver.delay = DELAY

    ids = _post_messages(bases, token, app_id, "order.paid", MESSAGES)

    def all_arrived() -> bool:
        got = _by_path(receiver)
        return all(
            {r.headers.get("webhook-id") for r in got.get("/hook" + path, [])} >= ids
            for path in paths.values()
        )

    eventually(all_arrived, timeout=120, what="every message at every endpoint")
    got = _by_path(receiver)
    for name, path in paths.items():
        arrived = got["/hook" + path]
        seen = Counter(r.headers.get("webhook-id") for r in arrived)
        duplicates = sum(n - 1 for n in seen.values())
        print(
            f"\n{name}: {len(arrived)} requests, {len(seen)} unique, {duplicates} duplicates, "
            f"peak in flight {_peak_in_flight(arrived)}, most in 1 s "
            f"{_most_in_one_second(arrived)}"
        )
        assert set(seen) == ids, name
        assert duplicates <= MESSAGES // 100, name
        assert _peak_in_flight(arrived) <= CAP, name
    assert _most_in_one_second(got["/hook/throttled"]) <= THROTTLE + 1

    # a failed attempt, retried by the dispatchers of both schedulers: once per message
    _api(
        bases[0],
        token,
        "POST",
        f"/app/{app_id}/endpoint",
        {"url": receiver.url + "/flaky", "filterTypes": ["order.refunded"]},
    )
    receiver.delay, receiver.status = 0.0, 500
    flaky = _post_messages(bases, token, app_id, "order.refunded", 10)

    def failed_once() -> bool:
        return {
            r.headers.get("webhook-id") for r in _by_path(receiver).get("/hook/flaky", [])
        } >= flaky

    eventually(failed_once, timeout=60, what="the first (failed) attempts")
    receiver.status = 200

    def attempts() -> dict[str, int]:
        with app.app_context():
            rows = db.session.execute(
                select(MessageAttempt.msg_id, func.count())
                .where(MessageAttempt.msg_id.in_(flaky))
                .group_by(MessageAttempt.msg_id)
            ).all()
            db.session.remove()
        return {msg_id: count for msg_id, count in rows}

    eventually(lambda: sum(attempts().values()) >= 2 * len(flaky), timeout=90, what="the retries")
    flaky_requests = Counter(r.headers.get("webhook-id") for r in _by_path(receiver)["/hook/flaky"])
    assert set(flaky_requests) == flaky
    assert all(count == 2 for count in flaky_requests.values()), flaky_requests  # 500, then 200
    assert set(attempts().values()) == {2}
