"""REDIS_URL for a Redis server or a Sentinel group: the client and the broker it gives."""

from __future__ import annotations

import pytest

from api.config import ConfigError, load_config
from api.redis_url import RedisURLError, SentinelGroup, broker, parse_sentinel


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_db() -> None:
    assert parse_sentinel("sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/herald/2") == (
        SentinelGroup((("10.0.0.1", 26379), ("10.0.0.2", 26380)), "herald", 2, "s3cret")
    )
    assert parse_sentinel("sentinel://h:1/m") == SentinelGroup((("h", 1),), "m", 0, None)
    assert parse_sentinel("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    "url",
    [
        "sentinel://h:1",
        "sentinel://h/m",
        "sentinel://h:x/m",
        "sentinel://h:1/m/x",
        "sentinel://h:1/m/1/2",
    ],
)
def test_a_malformed_sentinel_url_is_refused_at_boot(url: str) -> None:
    with pytest.raises(RedisURLError):
        parse_sentinel(url)
    with pytest.raises(ConfigError, match="sentinel"):
        load_config({"ENV": "testing", "REDIS_URL": url})


def test_the_broker_url_and_transport_options() -> None:
    assert broker("redis://127.0.0.1:6379/3") == ("redis://127.0.0.1:6379/3", {})
    assert broker("unix:///run/redis.sock") == ("redis+socket:///run/redis.sock", {})
    assert broker("sentinel://:pw@a:1,b:2/herald/3") == (
        "sentinel://:pw@a:1/3;sentinel://:pw@b:2/3",
        {"master_name": "herald"},
    )
