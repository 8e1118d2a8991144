"""REDIS_URL: a Redis server (`redis://`, `rediss://`, `unix://`) or a Redis Sentinel group.

    sentinel://[:password@]host:port[,host:port...]/<master name>[/<db>]

names the sentinels to ask and the master they watch; `password` is the master's (and its
replicas'). The same URL gives the app's Redis client (redis-py's `Sentinel.master_for`: a
failover is followed on the next connection error or read-only reply) and Celery's broker
(kombu's `sentinel://` transport with `master_name`), so the broker, idempotency keys, the
throttle and the awake flag all move to the new master together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SCHEME = "sentinel://"
# bounded waits: a hung Redis must not hang a request or a delivery loop
CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 3,
    "health_check_interval": 25,
}


class RedisURLError(ValueError):
    """A REDIS_URL this module cannot use (the message says why)."""


@dataclass(frozen=True)
class SentinelGroup:
    """A parsed sentinel:// URL."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    password: str | None


def parse_sentinel(url: str) -> SentinelGroup | None:
    """The sentinel group a sentinel:// URL names; None for any other URL."""
    if not url.startswith(SCHEME):
        return None
    parts = urlsplit(url)
    _, _, hosts = parts.netloc.rpartition("@")
    password = unquote(parts.password) if parts.password else None
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise RedisURLError(f"REDIS_URL: sentinel address {item!r} is not host:port")
        sentinels.append((host, int(port)))
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisURLError(
            "REDIS_URL: a sentinel URL is sentinel://host:port[,host:port...]/<master name>[/<db>]"
        )
    return SentinelGroup(tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0, password)


def client(url: str) -> redis.Redis:
    """The Redis client of REDIS_URL (for a sentinel group: its current master)."""
    group = parse_sentinel(url)
    if group is None:
        return redis.Redis.from_url(url, **CLIENT_OPTIONS)
    sentinel = Sentinel(
        list(group.sentinels),
        sentinel_kwargs={"socket_timeout": 2, "socket_connect_timeout": 2},
        socket_timeout=CLIENT_OPTIONS["socket_timeout"],
        socket_connect_timeout=CLIENT_OPTIONS["socket_connect_timeout"],
    )
    master: redis.Redis = sentinel.master_for(
        group.master,
        db=group.db,
        password=group.password,
        health_check_interval=CLIENT_OPTIONS["health_check_interval"],
    )
    return master


def broker(url: str) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL for REDIS_URL and the transport options it needs."""
    group = parse_sentinel(url)
    if group is None:
        if url.startswith("unix://"):  # kombu spells a unix-socket Redis redis+socket://
            return "redis+socket://" + url[len("unix://") :], {}
        return url, {}
    auth = f":{group.password}@" if group.password else ""
    urls = ";".join(f"sentinel://{auth}{host}:{port}/{group.db}" for host, port in group.sentinels)
    return urls, {"master_name": group.master}
