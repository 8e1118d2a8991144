"""Endpoint recovery (resend what failed to reach an endpoint in a time window) and replay
(send an endpoint what it never got), both as background tasks."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import aliased

from api.extensions import db
from api.ids import boundary_id
from api.models import (
    BackgroundTask,
    Delivery,
    Endpoint,
    Message,
    MessageAttempt,
    MessageStatus,
    TriggerType,
)
from api.models.common import utcnow
from api.services import background_tasks, operational_events
from api.services.delivery import outbox
from api.services.filters import clamp_moment
from api.services.lookup import (
    get_app_endpoint,
)
from api.services.messages import endpoint_matches
from api.services.queue import enqueue

logger = logging.getLogger(__name__)

RECOVER_TASK = "herald.recover_endpoint"
TASK_TYPE = "endpoint.recover"
RECOVER_LIMIT = 10_000
RESUME_TASK = "herald.resume_stale_recoveries"
STALE_AFTER = timedelta(minutes=5)
REPLAY_TASK = "herald.replay_endpoint"
REPLAY_TYPE = "endpoint.replay"
REPLAY_BATCH = 500
# The worker task of each task type that resume_stale_recoveries re-enqueues.
RESUMABLE = {
    TASK_TYPE: RECOVER_TASK,
    REPLAY_TYPE: REPLAY_TASK,
    background_tasks.PURGE_TYPE: background_tasks.PURGE_TASK,
}


def _start_window_task(
    org_id: str,
    app_id: str,
    endpoint_id: str,
    window: tuple[datetime, datetime | None],
    kind: str,
    worker_task: str,
    **extra: Any,
) -> BackgroundTask:
    """Record a running background task over an endpoint's [since, until) window, commit,
    then enqueue its worker task."""
    endpoint = get_app_endpoint(org_id, app_id, endpoint_id)
    since, until = clamp_moment(window[0]), clamp_moment(window[1] or utcnow())
    task = BackgroundTask(
        org_id=org_id,
        task=kind,
        status="running",
        data={
            "appId": endpoint.app_id,
            "endpointId": endpoint.id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            **extra,
        },
    )
    db.session.add(task)
    db.session.commit()
    enqueue(worker_task, task.id)
    event = kind.split(".")[1] + ".started"  # recover.started, replay.started
    logger.info(event, extra={"task_id": task.id, "endpoint_id": endpoint.id})
    return task


def start_recovery(
    org_id: str, app_id: str, endpoint_id: str, since: datetime, until: datetime | None
) -> BackgroundTask:
    """Record a running `endpoint.recover` task, commit, then enqueue its worker task."""
    return _start_window_task(org_id, app_id, endpoint_id, (since, until), TASK_TYPE, RECOVER_TASK)


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
        operational_events.emit_task_finished(task)
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
    operational_events.emit_task_finished(task)
    db.session.commit()
    if deliveries:
        outbox.wake()
    logger.info("recover.finished", extra={"task_id": task.id, "resent": len(deliveries)})
    return len(deliveries)


def start_replay(
    org_id: str, app_id: str, endpoint_id: str, since: datetime, until: datetime | None
) -> BackgroundTask:
    """Record a running `endpoint.replay` task, commit, then enqueue its worker task."""
    window = (since, until)
    return _start_window_task(
        org_id, app_id, endpoint_id, window, REPLAY_TYPE, REPLAY_TASK, resent=0
    )


def missing_messages(
    endpoint: Endpoint, since: datetime, until: datetime, after: str, limit: int = REPLAY_BATCH
) -> Select[Any]:
    """The app's messages created in [since, until) after id `after` that still have a payload
    and no delivery to the endpoint (never routed there, never resent), oldest first."""
    delivered = exists().where(Delivery.msg_id == Message.id, Delivery.endpoint_id == endpoint.id)
    return (
        select(Message)
        .where(
            Message.app_id == endpoint.app_id,
            Message.id >= boundary_id("msg", since),
            Message.id < boundary_id("msg", until),
            Message.id > after,
            Message.payload.is_not(None),
            Message.expiration > utcnow(),
            ~delivered,
        )
        .order_by(Message.id)
        .limit(limit)
    )


def _replay_batch(task: BackgroundTask) -> bool:
    """Queue one batch of the replay as manual deliveries and note the progress in the task
    (not committed); True when nothing is left."""
    data = dict(task.data)
    endpoint = db.session.get(Endpoint, data.get("endpointId", ""))
    if endpoint is None:
        task.status, task.data = "failed", {**data, "error": "endpoint not found"}
        return True
    if endpoint.disabled:  # disabled endpoints receive nothing, not even replays
        task.status = "finished"
        return True
    since = datetime.fromisoformat(data["since"])
    until = datetime.fromisoformat(data["until"])
    query = missing_messages(endpoint, since, until, data.get("after", ""), REPLAY_BATCH)
    batch = list(db.session.scalars(query))
    sent = 0
    for message in batch:  # the endpoint's filters, exactly as ingest applies them
        if endpoint_matches(endpoint, message.event_type, message.channels):
            delivery = outbox.add_delivery(message, endpoint, TriggerType.MANUAL)
            if message.deliver_at is not None and message.deliver_at > delivery.created_at:
                delivery.next_attempt_at = message.deliver_at  # deliverAt still holds
            sent += 1
    done = len(batch) < REPLAY_BATCH
    data["resent"] = data.get("resent", 0) + sent
    if batch:
        data["after"] = batch[-1].id  # where a rerun goes on from
    task.data = data
    if done:
        task.status = "finished"
    return done


def run_replay(task_id: str) -> int:
    """Send the task's endpoint every message of the window it never got, as manual
    deliveries; returns how many this run queued (0 if already done).

    Each batch commits with the task's progress and under its row lock, and a message that
    got a delivery no longer qualifies: a rerun or a concurrent duplicate never sends twice."""
    queued = 0
    while True:
        task = background_tasks.lock_running(task_id)
        if task is None:
            return queued
        before = int(task.data.get("resent", 0))
        done = _replay_batch(task)
        sent = int(task.data.get("resent", 0)) - before
        if done:  # the task's end and its event commit together
            operational_events.emit_task_finished(task)
        db.session.commit()
        queued += sent
        if sent:
            outbox.wake()
        if done:
            logger.info("replay.finished", extra={"task_id": task_id, "resent": queued})
            return queued


def resume_stale_recoveries(stale_after: timedelta = STALE_AFTER) -> list[str]:
    """Re-enqueue background tasks (recover, replay, purge) still `running` and untouched for
    `stale_after`: their publish was lost (Redis down) or their worker died. Their runs are
    idempotent, so a task that was merely slow is harmless to enqueue again."""
    cutoff = utcnow() - stale_after
    tasks = list(
        db.session.scalars(
            select(BackgroundTask)
            .where(
                BackgroundTask.task.in_(RESUMABLE),
                BackgroundTask.status == "running",
                BackgroundTask.updated_at < cutoff,
            )
            .order_by(BackgroundTask.id)
            .limit(100)
            # a task a worker is running holds its row lock: not stale, and the scheduler's
            # queue must not wait for a long purge
            .with_for_update(skip_locked=True)
        )
    )
    for task in tasks:
        task.updated_at = utcnow()  # the next resume waits another stale_after
    db.session.commit()
    for task in tasks:
        enqueue(RESUMABLE[task.task], task.id)
    if tasks:
        logger.warning("recover.resumed", extra={"tasks": len(tasks)})
    return [task.id for task in tasks]
