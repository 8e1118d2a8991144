"""Background tasks (`qtask_…`): list and read them, and the application's purge of every
message payload (`application.purge_content`). Recovery and replay live in recovery.py."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from api.errors import NotFound
from api.extensions import db
from api.ids import boundary_id
from api.models import BackgroundTask, Message
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services import operational_events
from api.services.filters import LIST_WINDOW
from api.services.lookup import get_application
from api.services.queue import enqueue

logger = logging.getLogger(__name__)

PURGE_TASK = "herald.purge_app_content"
PURGE_TYPE = "application.purge_content"
RUNNING, FINISHED, FAILED = "running", "finished", "failed"


def list_background_tasks(
    org_id: str,
    *,
    limit: int,
    iterator: str | None = None,
    order: str | None = None,
    status: str | None = None,
    task: str | None = None,
) -> Page:
    """The org's tasks of the last 90 days, newest first unless `order=ascending`."""
    query = select(BackgroundTask).where(
        BackgroundTask.org_id == org_id,
        BackgroundTask.id > boundary_id("qtask", utcnow() - LIST_WINDOW, upper=True),
    )
    if status is not None:
        query = query.where(BackgroundTask.status == status)
    if task is not None:
        query = query.where(BackgroundTask.task == task)
    return paginate(query, BackgroundTask.id, limit, iterator, descending=order != "ascending")


def get_background_task(org_id: str, task_id: str) -> BackgroundTask:
    """The org's task, or 404 (another org's task too)."""
    if "\x00" in task_id:  # PostgreSQL rejects NUL bytes: no such row
        raise NotFound()
    task = db.session.scalar(
        select(BackgroundTask).where(BackgroundTask.id == task_id, BackgroundTask.org_id == org_id)
    )
    if task is None:
        raise NotFound()
    return task


def lock_running(task_id: str) -> BackgroundTask | None:
    """The task, row-locked until the next commit, while it is still running; else None (a
    redelivered or resumed task whose work is done: nothing to do)."""
    task = db.session.get(BackgroundTask, task_id, with_for_update=True)
    if task is None or task.status != RUNNING:
        db.session.rollback()
        return None
    return task


def start_purge_content(org_id: str, app_id_or_uid: str) -> BackgroundTask:
    """Record a running `application.purge_content` task, commit, then enqueue its worker."""
    app = get_application(org_id, app_id_or_uid)
    task = BackgroundTask(org_id=org_id, task=PURGE_TYPE, status=RUNNING, data={"appId": app.id})
    db.session.add(task)
    db.session.commit()
    enqueue(PURGE_TASK, task.id)
    logger.info("purge_content.started", extra={"task_id": task.id, "app_id": app.id})
    return task


def run_purge_content(task_id: str) -> int:
    """Delete the payload of every message of the task's app; returns how many (0 once done).

    The payloads and the task's end commit together, so a rerun purges nothing twice; pending
    deliveries of those messages are canceled when claimed (no payload left to send)."""
    task = lock_running(task_id)
    if task is None:
        return 0
    data: dict[str, Any] = dict(task.data)
    result = db.session.execute(
        update(Message)
        .where(Message.app_id == data.get("appId", ""), Message.payload.is_not(None))
        .values(payload=None),
        execution_options={"synchronize_session": False},
    )
    purged = int(getattr(result, "rowcount", 0) or 0)
    task.status, task.data = FINISHED, {**data, "purged": purged}
    operational_events.emit_task_finished(task)
    db.session.commit()
    logger.info("purge_content.finished", extra={"task_id": task_id, "purged": purged})
    return purged
