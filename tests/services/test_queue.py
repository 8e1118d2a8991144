"""The lean publisher writes what Celery's own send_task writes (message protocol 2)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask

from api.extensions import get_redis
from api.services.queue import QUEUE, enqueue_many, task_message

PROBE_QUEUE = "herald.test-probe"


@pytest.fixture(autouse=True)
def _context(app: Flask) -> Any:
    with app.app_context():
        yield


def _decoded(raw: bytes | str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_envelope_matches_what_celery_send_task_stores(app: Flask) -> None:
    redis = get_redis()
    redis.delete(PROBE_QUEUE)
    app.extensions["celery"].send_task("herald.deliver", args=("msgep_1", "tok"), queue=PROBE_QUEUE)
    theirs = _decoded(redis.rpop(PROBE_QUEUE))  # type: ignore[arg-type]
    ours = _decoded(task_message("herald.deliver", ("msgep_1", "tok"), queue=PROBE_QUEUE))
    assert ours["body"] == theirs["body"]  # [args, kwargs, embed]
    assert set(ours) == set(theirs)
    assert set(ours["headers"]) == set(theirs["headers"])
    assert set(ours["properties"]) == set(theirs["properties"])
    same = ("content-encoding", "content-type")
    assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}
    for key in ("lang", "task", "argsrepr", "kwargsrepr", "retries", "timelimit", "eta"):
        assert ours["headers"][key] == theirs["headers"][key], key
    for key in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key], key
    headers, properties = ours["headers"], ours["properties"]
    assert headers["id"] == headers["root_id"] == properties["correlation_id"]
    assert properties["delivery_tag"] != headers["id"]


def test_enqueue_many_is_one_fifo_push(app: Flask) -> None:
    redis = get_redis()
    before = redis.llen(QUEUE)
    assert enqueue_many("herald.ping", [("a",), ("b",), ("c",)]) == 3
    assert enqueue_many("herald.ping", []) == 0
    assert redis.llen(QUEUE) == before + 3
    # kombu consumes with BRPOP: the oldest end of the list is the right one
    queued = [_decoded(raw)["body"][0] for raw in redis.lrange(QUEUE, 0, 2)]
    assert queued == [["c"], ["b"], ["a"]]  # LPUSH order: kombu's BRPOP takes "a" first
    redis.ltrim(QUEUE, 3, -1)
