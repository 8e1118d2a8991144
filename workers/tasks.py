"""Celery tasks: named `herald.*`, acks_late, arguments are ids and primitives."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_shutting_down

from api.extensions import get_redis

logger = logging.getLogger(__name__)

DISPATCH_QUEUE = "herald.dispatch"  # its own queue: a deep delivery backlog must not delay it


@worker_init.connect
def _no_cancel_without_kill(sender: Any = None, **_: Any) -> None:
    """Pools that cannot kill a job (threads, solo) must not cancel on connection loss.

    Celery would call `terminate_job` (NotImplementedError) and the consumer never recovers
    from a Redis restart (measured in tests/e2e/test_faults.py). A task that keeps running
    is harmless here: its writes are fenced on the lease token.
    """
    pool = getattr(sender, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    if any(kind in str(name) for kind in ("thread", "solo")):
        sender.app.conf.worker_cancel_long_running_tasks_on_connection_loss = False


@worker_process_init.connect
def _reset_connections(**_: Any) -> None:
    """A prefork child must not share the parent's database sockets."""
    import sys

    from api.extensions import db

    main = sys.modules.get("workers.main")
    if main is not None:
        with main.flask_app.app_context():
            db.engine.dispose(close=False)


@worker_shutting_down.connect
def _stop_pump(**_: Any) -> None:
    """Warm shutdown: the delivery loop claims nothing more and records what is in flight."""
    import sys

    main = sys.modules.get("workers.main")
    found = main.flask_app.extensions.get("herald_pump") if main is not None else None
    if found is not None:
        found.stop()


@shared_task(name="herald.ping", acks_late=True)
def ping(token: str) -> str:
    """Record that a worker ran a task inside the app context (used by health and tests)."""
    get_redis().set(f"herald:ping:{token}", "pong", ex=300)
    return token


@shared_task(name="herald.pump", acks_late=False)
def pump() -> bool:
    """A wake-up: run this process's delivery loop until idle, unless it already runs
    (api/services/delivery/pump.py). Acknowledged on receipt: a lost wake-up only costs
    the dispatcher's next pass."""
    from api.services.delivery.pump import pump as process_pump

    return process_pump().wake()


@shared_task(name="herald.dispatch_due", acks_late=True, queue=DISPATCH_QUEUE, expires=30)
def dispatch_due() -> int:
    """Wake a pump when deliveries are due (run by beat every DISPATCH_INTERVAL s)."""
    from api.services.delivery.claim import dispatch_due as dispatch

    return dispatch()


@shared_task(name="herald.vacuum_deliveries", acks_late=True, queue=DISPATCH_QUEUE, expires=30)
def vacuum_deliveries() -> bool:
    """VACUUM the delivery table when dead row versions pile up (every 10 s; a no-op mostly)."""
    from api.services.delivery.vacuum import vacuum_if_needed

    return vacuum_if_needed()


@shared_task(
    name="herald.purge_expired_payloads", acks_late=True, queue=DISPATCH_QUEUE, expires=3000
)
def purge_expired_payloads() -> int:
    """Null the payloads of expired messages (hourly)."""
    from api.services.retention import purge_expired_payloads as purge

    return purge()


@shared_task(name="herald.purge_app_content", acks_late=True)
def purge_app_content(task_id: str) -> int:
    """Delete every payload of the task's application (expunge-all-contents); idempotent."""
    from api.services.background_tasks import run_purge_content

    return run_purge_content(task_id)
