"""Redis through Sentinel: REDIS_URL=sentinel://… for the broker, idempotency keys and the
throttle, and a failover of the primary while messages flow — every accepted message arrives.

Real processes: a primary redis-server, its replica and a sentinel watching them; a gunicorn
web tier, a Celery worker and beat, all given the sentinel URL; default settings. The
producer posts with an idempotency key and a throttled endpoint, retrying a request that
fails while the primary moves (what the SDKs do); `SENTINEL FAILOVER` promotes the replica
in the middle of the stream.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from api.services import tokens
from tests.conftest import DATABASE_URL
from tests.e2e.gunicorn_harness import GunicornServer
from tests.e2e.processes import Stack, start_redis
from tests.support import Receiver, eventually, free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]

MASTER = "herald"
MESSAGES = 200


class SentinelGroup:
    """A primary, its replica and one sentinel (quorum 1), all private and memory-only."""

    def __init__(self, tmp: Path) -> None:
        self.primary_port, self.replica_port, self.sentinel_port = (
            free_port(),
            free_port(),
            free_port(),
        )
        self.procs = [start_redis(self.primary_port, tmp / "primary.log")]
        self.procs.append(start_redis(self.replica_port, tmp / "replica.log"))
        redis.Redis(port=self.replica_port).replicaof("127.0.0.1", self.primary_port)
        conf = tmp / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        self.procs.append(
            subprocess.Popen(
                ["redis-server", str(conf), "--sentinel"],
                stdout=(tmp / "sentinel.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
        )
        self.sentinel = redis.Redis(port=self.sentinel_port, decode_responses=True)
        eventually(self._ready, timeout=30, what="the sentinel seeing the primary and replica")
        self.url = f"sentinel://127.0.0.1:{self.sentinel_port}/{MASTER}/0"

    def _ready(self) -> bool:
        try:
            replicas = self.sentinel.sentinel_slaves(MASTER)
            link = redis.Redis(port=self.replica_port).info("replication")["master_link_status"]
        except redis.RedisError:
            return False
        return link == "up" and any("s_down" not in r["flags"] for r in replicas)

    def master_port(self) -> int:
        return int(self.sentinel.sentinel_get_master_addr_by_name(MASTER)[1])

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    found = SentinelGroup(tmp_path)
    yield found
    found.stop()


def _post(base: str, token: str, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["idempotency-key"] = key
    for _ in range(100):  # what an SDK does while the primary moves: retry, same key
        try:
            response = requests.post(f"{base}/api/v1{path}", json=body, headers=headers, timeout=10)
        except requests.RequestException:
            time.sleep(0.2)
            continue
        if response.status_code < 300:
            return response.json()
        assert response.status_code >= 500, response.text  # never a 4xx for a good request
        time.sleep(0.2)
    raise AssertionError(f"{path} kept failing")


def test_a_sentinel_failover_while_messages_flow_loses_nothing(
    app: Flask, tmp_path: Path, group: SentinelGroup, receiver: Receiver
) -> None:
    server = GunicornServer(tmp_path / "web", app=None, database_url=DATABASE_URL)
    server.env["REDIS_URL"] = group.url
    stack = Stack(group.url, tmp_path)
    try:
        server.start()
        stack.start("worker")
        stack.start("beat")
        with app.app_context():
            _, token = tokens.create_token("sentinel")
        base = server.base_url
        app_id = _post(base, token, "/app", {"name": "Shop"})["id"]
        _post(base, token, f"/app/{app_id}/endpoint", {"url": receiver.url, "throttleRate": 100})
        accepted: dict[str, float] = {}
        failover_at: list[float] = []

        def produce() -> None:
            for n in range(MESSAGES):
                body = {"eventType": "order.paid", "payload": {"n": n}}
                out = _post(base, token, f"/app/{app_id}/msg", body, key=str(uuid.uuid4()))
                accepted[out["id"]] = time.monotonic()
                time.sleep(0.03)

        producer = threading.Thread(target=produce)
        producer.start()
        eventually(lambda: len(receiver.requests) >= 40, timeout=60, what="the stream flowing")
        assert group.master_port() == group.primary_port
        group.sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
        eventually(
            lambda: group.master_port() == group.replica_port, timeout=30, what="the failover"
        )
        failover_at.append(time.monotonic())
        producer.join(300)
        assert not producer.is_alive()
        ids = set(accepted)
        eventually(
            lambda: set(receiver.webhook_ids()) >= ids, timeout=120, what="every accepted message"
        )
        after = [i for i, at in accepted.items() if at > failover_at[0]]
        print(
            f"\nsentinel failover: {len(ids)} accepted, {len(after)} after the failover, "
            f"{len(receiver.requests)} requests received, "
            f"{len(receiver.requests) - len(set(receiver.webhook_ids()))} duplicates"
        )
        assert after, "the web tier followed the new primary"
        assert redis.Redis(port=group.replica_port).info("replication")["role"] == "master"
    finally:
        stack.stop_all()
        server.stop()
