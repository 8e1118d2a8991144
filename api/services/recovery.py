"""Endpoint recovery: resend every message that failed to reach an endpoint in a time window."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from api.extensions import db
from api.ids import boundary_id
from api.models import (
    BackgroundTask,
    Endpoint,
    Message,
    MessageAttempt,
    MessageStatus,
    TriggerType,
)
from api.models.common import utcnow
from api.services.delivery import outbox
from api.services.filters import clamp_moment
from api.services.lookup import (
    get_app_endpoint,
)
from api.services.queue import enqueue

logger = logging.getLogger(__name__)

RECOVER_TASK = "herald.recover_endpoint"
TASK_TYPE = "endpoint.recover"
RECOVER_LIMIT = 10_000
RESUME_TASK = "herald.resume_stale_recoveries"
STALE_AFTER = timedelta(minutes=5)


def start_recovery(
    org_id: str, app_id: str, endpoint_id: str, since: datetime, until: datetime | None
) -> BackgroundTask:
    """Record a running `endpoint.recover` task, commit, then enqueue its worker task."""
    endpoint = get_app_endpoint(org_id, app_id, endpoint_id)
    since, until = clamp_moment(since), clamp_moment(until or utcnow())
    task = BackgroundTask(
        org_id=org_id,
        task=TASK_TYPE,
        status="running",
        data={
            "appId": endpoint.app_id,
            "endpointId": endpoint.id,
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
    )
    db.session.add(task)
    db.session.commit()
    enqueue(RECOVER_TASK, task.id)
    logger.info("recover.started", extra={"task_id": task.id, "endpoint_id": endpoint.id})
    return task


def recoverable_messages(
    endpoint_id: str, since: datetime, until: datetime, limit: int = RECOVER_LIMIT
) -> Select[Any]:
    """Messages with a failed attempt to the endpoint in [since, until) and no success there."""
    lower, upper = boundary_id("atmpt", since), boundary_id("atmpt", until)
    ok = aliased(MessageAttempt)
    succeeded = (
        select(ok.id)
        .where(
            ok.endpoint_id == endpoint_id,
            ok.msg_id == MessageAttempt.msg_id,
            ok.status == MessageStatus.SUCCESS,
            ok.id >= lower,
            ok.id < upper,
        )
        .exists()
    )
    failed_ids = (
        select(MessageAttempt.msg_id)
        .where(
            MessageAttempt.endpoint_id == endpoint_id,
            MessageAttempt.status == MessageStatus.FAIL,
            MessageAttempt.id >= lower,
            MessageAttempt.id < upper,
            ~succeeded,
        )
        .group_by(MessageAttempt.msg_id)
        .order_by(MessageAttempt.msg_id)
        .limit(limit)
    )
    return (
        select(Message)
        .where(
            Message.id.in_(failed_ids), Message.payload.is_not(None), Message.expiration > utcnow()
        )
        .order_by(Message.id)
    )


def run_recovery(task_id: str) -> int:
    """Resend the task's messages as manual deliveries; returns how many (0 if already done)."""
    task = db.session.get(BackgroundTask, task_id, with_for_update=True)
    if task is None or task.status != "running":  # a redelivered task: nothing left to do
        db.session.rollback()
        return 0
    data = dict(task.data)
    endpoint = db.session.get(Endpoint, data.get("endpointId", ""))
    if endpoint is None:
        task.status, task.data = "failed", {**data, "error": "endpoint not found"}
        db.session.commit()
        return 0
    deliveries = []
    if not endpoint.disabled:  # disabled endpoints receive nothing, not even recoveries
        since = datetime.fromisoformat(data["since"])
        until = datetime.fromisoformat(data["until"])
        for message in db.session.scalars(recoverable_messages(endpoint.id, since, until)):
            deliveries.append(outbox.add_delivery(message, endpoint, TriggerType.MANUAL))
    # the deliveries and the task's end commit together, so a rerun never resends twice
    task.status, task.data = "finished", {**data, "resent": len(deliveries)}
    db.session.commit()
    if deliveries:
        outbox.wake()
    logger.info("recover.finished", extra={"task_id": task.id, "resent": len(deliveries)})
    return len(deliveries)


def resume_stale_recoveries(stale_after: timedelta = STALE_AFTER) -> list[str]:
    """Re-enqueue recovery tasks still `running` and untouched for `stale_after`: their publish
    was lost (Redis down) or their worker died. run_recovery is idempotent, so a task that was
    merely slow is harmless to enqueue again."""
    cutoff = utcnow() - stale_after
    tasks = list(
        db.session.scalars(
            select(BackgroundTask)
            .where(
                BackgroundTask.task == TASK_TYPE,
                BackgroundTask.status == "running",
                BackgroundTask.updated_at < cutoff,
            )
            .order_by(BackgroundTask.id)
            .limit(100)
        )
    )
    for task in tasks:
        task.updated_at = utcnow()  # the next resume waits another stale_after
    db.session.commit()
    for task in tasks:
        enqueue(RECOVER_TASK, task.id)
    if tasks:
        logger.warning("recover.resumed", extra={"tasks": len(tasks)})
    return [task.id for task in tasks]
