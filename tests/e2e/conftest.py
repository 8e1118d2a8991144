"""Fixtures of the e2e tests' real processes (tests/e2e/processes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import PrivateRedis, Stack


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Make worker + beat stacks (Stack(redis_url, concurrency=4)); all stopped afterwards."""
    stacks: list[Stack] = []

    def make(redis_url: str, concurrency: int = 4) -> Stack:
        stacks.append(Stack(redis_url, tmp_path, concurrency))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.stop_all()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path / "redis.log")
    yield redis
    for proc in redis.procs:
        proc.kill()
        proc.wait(10)
