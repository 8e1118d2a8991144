"""The Celery client side: configure the Celery app, and enqueue tasks by name after commit.

The API never imports task modules: it sends `herald.*` task names. The database is the
source of truth, so a failed publish only costs latency (the dispatcher picks the work up).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app

logger = logging.getLogger(__name__)

QUEUE = "herald"


def broker_url(redis_url: str) -> str:
    """Celery/kombu spell a unix-socket Redis as redis+socket://."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


def celery_settings(app: Flask) -> dict[str, Any]:
    """Celery settings derived from the Flask config (see GUNICORN-CELERY.md §C.8)."""
    interval = app.config["DISPATCH_INTERVAL"]
    return {
        "broker_url": broker_url(app.config["REDIS_URL"]),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "health_check_interval": 25,
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
        "task_time_limit": max(30, app.config["LEASE_SECONDS"] - 15),
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "beat_schedule": {
            "dispatch-due": {"task": "herald.dispatch_due", "schedule": interval},
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


def enqueue(task_name: str, *args: Any) -> bool:
    """Publish a task by name; never raises (a lost publish is recovered by the dispatcher)."""
    celery_app: Celery = current_app.extensions["celery"]
    try:
        celery_app.send_task(task_name, args=args, queue=QUEUE)
    except Exception:  # broker down or hung: the DB row stays due, the dispatcher retries it
        logger.warning("queue.publish_failed", extra={"task": task_name}, exc_info=True)
        return False
    return True
