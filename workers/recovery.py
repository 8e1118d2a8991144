"""Celery tasks for endpoint recovery and replay: thin wrappers around api.services.recovery."""

from __future__ import annotations

import logging

from celery import shared_task

from api.services import recovery
from workers.tasks import DISPATCH_QUEUE

logger = logging.getLogger(__name__)


@shared_task(name=recovery.RECOVER_TASK, acks_late=True)
def recover_endpoint(task_id: str) -> int:
    """Resend what failed to reach the task's endpoint; idempotent (a finished task is a no-op)."""
    return recovery.run_recovery(task_id)


@shared_task(name=recovery.REPLAY_TASK, acks_late=True)
def replay_endpoint(task_id: str) -> int:
    """Send the task's endpoint what it never got; idempotent (a sent message is not resent)."""
    return recovery.run_replay(task_id)


@shared_task(name=recovery.RESUME_TASK, acks_late=True, queue=DISPATCH_QUEUE, expires=120)
def resume_stale_recoveries() -> int:
    """Periodic: re-enqueue recovery tasks whose publish or worker was lost."""
    return len(recovery.resume_stale_recoveries())
