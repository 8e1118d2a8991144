"""The Celery client side: configure the Celery app, and enqueue tasks by name after commit.

The API never imports task modules: it sends `herald.*` task names. The database is the
source of truth, so a failed publish only costs latency (the dispatcher picks the work up).

Publishing is on the ingest hot path, where `Celery.send_task` cost ~1 ms of CPU per task
(measured: bench/ingest.py). So tasks are written directly in Celery's documented message
protocol 2 as kombu's Redis transport stores it (a JSON envelope with a base64 body, LPUSHed
on the queue's list), all of a message's tasks in one LPUSH. The workers are plain Celery
workers; tests/services/test_queue.py checks the envelope against kombu's own and has a real
worker run one.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery, Task
from flask import Flask

from api import redis_url
from api.extensions import get_redis

logger = logging.getLogger(__name__)

QUEUE = "herald"


def celery_settings(app: Flask) -> dict[str, Any]:
    """Celery settings derived from the Flask config (see GUNICORN-CELERY.md §C.8)."""
    interval = app.config["DISPATCH_INTERVAL"]
    url, transport_options = redis_url.broker(app.config["REDIS_URL"])
    return {
        "broker_url": url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "health_check_interval": 25,
            **transport_options,
        },
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "task_default_queue": QUEUE,
        "task_acks_late": True,
        "task_ignore_result": True,
        # one (disabled) result backend shared by the pool's threads, not one built per
        # thread: building it scans the installed packages' entry points (~2 ms each)
        "result_backend_thread_safe": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "beat_schedule": {
            "dispatch-due": {"task": "herald.dispatch_due", "schedule": interval},
            "vacuum-deliveries": {"task": "herald.vacuum_deliveries", "schedule": 10.0},
            "purge-expired-payloads": {"task": "herald.purge_expired_payloads", "schedule": 3600.0},
            "resume-stale-recoveries": {
                "task": "herald.resume_stale_recoveries",
                "schedule": 60.0,
            },
        },
    }


def init_celery(app: Flask) -> Celery:
    """Create the Celery app whose tasks run inside this Flask app's context."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery("herald", task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_DUMPS = json.JSONEncoder(separators=(", ", ": ")).encode


def task_message(task_name: str, args: Sequence[Any], queue: str = QUEUE) -> str:
    """One task as kombu's Redis transport stores it (Celery message protocol 2)."""
    task_id = str(uuid.uuid4())
    body = base64.b64encode(_DUMPS([list(args), {}, _EMBED]).encode()).decode()
    return _DUMPS(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task_name,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": repr(tuple(args)),
                "kwargsrepr": "{}",
                "origin": _ORIGIN,
                "ignore_result": True,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def enqueue_many(task_name: str, arg_lists: Iterable[Sequence[Any]]) -> int:
    """Publish one task per argument list in one round trip; returns how many went (0 when
    the broker is down or hung: never raises, the dispatcher recovers the work)."""
    messages = [task_message(task_name, args) for args in arg_lists]
    if not messages:
        return 0
    try:
        get_redis().lpush(QUEUE, *messages)
    except Exception:  # broker down or hung: the DB rows stay due, the dispatcher retries them
        logger.warning(
            "queue.publish_failed", extra={"task": task_name, "tasks": len(messages)}, exc_info=True
        )
        return 0
    return len(messages)


def enqueue(task_name: str, *args: Any) -> bool:
    """Publish one task by name; never raises (a lost publish is recovered by the dispatcher)."""
    return enqueue_many(task_name, [args]) == 1
