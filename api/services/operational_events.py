"""Operational webhooks, the sending side: Svix's events about an org's endpoints, deliveries
and background tasks, each stored as an ordinary message of the org's internal application
(`Application.internal`), so it is routed, signed, retried, logged and recoverable exactly
like every other delivery.

Every `emit_*` stages its events in the caller's transaction, before the caller commits: an
event is committed with the change it reports, or not at all (a crash never loses one, nor
sends one about a change that was rolled back). The staging runs in a savepoint and never
raises: a failure to emit is logged and rolled back alone, never breaking the API call or the
delivery recording that triggered it. Nothing is emitted about the internal application's own
endpoints and deliveries (no loops), and nothing at all until the org has one (its first
operational-webhook endpoint creates it). A running pump, or the dispatcher's next pass, sends
them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from api.extensions import db
from api.models import Application, BackgroundTask, Endpoint, Message
from api.services.delivery import outbox
from api.services.messages import stage_message

logger = logging.getLogger(__name__)

INTERNAL_UID = "herald/operational"  # a '/' is in no user uid and in no URL path segment
ENDPOINT_CREATED = "endpoint.created"
ENDPOINT_UPDATED = "endpoint.updated"
ENDPOINT_DELETED = "endpoint.deleted"
ENDPOINT_DISABLED = "endpoint.disabled"
ENDPOINT_ENABLED = "endpoint.enabled"
ATTEMPT_FAILING = "message.attempt.failing"
ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
ATTEMPT_RECOVERED = "message.attempt.recovered"
TASK_FINISHED = "background_task.finished"
EVENT_TYPES = (
    ENDPOINT_CREATED,
    ENDPOINT_UPDATED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_ENABLED,
    ATTEMPT_FAILING,
    ATTEMPT_EXHAUSTED,
    ATTEMPT_RECOVERED,
    TASK_FINISHED,
)
FAILING_AFTER = 4  # message.attempt.failing is sent on a delivery's fourth failed attempt


@dataclass(frozen=True)
class AttemptEvent:
    """A recorded attempt that crossed a threshold (record.py decides which)."""

    event_type: str
    app_id: str
    endpoint_id: str
    msg_id: str
    attempt_id: str
    status_code: int | None
    timestamp: datetime


@dataclass(frozen=True)
class DisabledEndpoint:
    """An endpoint the delivery engine has just disabled, and since when it was failing."""

    app_id: str
    endpoint_id: str
    fail_since: datetime | None


def find_internal_app_id(org_id: str) -> str | None:
    """The id of the org's internal application, or None when it has none yet."""
    return db.session.scalar(
        select(Application.id).where(Application.org_id == org_id, Application.internal)
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _staged(what: str, work: Callable[[], None]) -> None:
    """Run `work` in a savepoint of the caller's transaction; a failure rolls back only it."""
    try:
        with db.session.begin_nested():
            work()
    except Exception:
        logger.exception("operational_webhook.emit_failed", extra={"event_type": what})


def emit(org_id: str, event_type: str, data: dict[str, Any]) -> None:
    """Stage `{"data": …, "type": …}` as a message of the org's internal application (in the
    caller's transaction: call inside a savepoint, see _staged)."""
    app_id = find_internal_app_id(org_id)
    if app_id is None:
        return
    body = json.dumps({"data": data, "type": event_type}, separators=(",", ":"))
    if stage_message(org_id, app_id, event_type, body):
        db.session.info[_WAKE] = True  # once committed: _wake_after_commit
    logger.info("operational_webhook.emitted", extra={"event_type": event_type})


_WAKE = "herald.operational_wake"


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    """Staged events are due once their transaction commits: wake a pump then (a lost
    wake-up costs only the dispatcher's next pass)."""
    if session.info.pop(_WAKE, False):
        outbox.wake()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_WAKE, None)


def _endpoint_data(app: Application, endpoint: Endpoint) -> dict[str, Any]:
    return {
        "appId": app.id,
        "appUid": app.uid,
        "endpointId": endpoint.id,
        "endpointUid": endpoint.uid,
    }


def emit_endpoint_event(event_type: str, app: Application, endpoint: Endpoint) -> None:
    """endpoint.created / updated / deleted / enabled, or disabled by the API (`manual`)."""
    if app.internal:
        return

    def work() -> None:
        data = _endpoint_data(app, endpoint)
        if event_type == ENDPOINT_DISABLED:
            data.update(failSince=_iso(endpoint.first_failure_at), trigger="manual")
        emit(app.org_id, event_type, data)

    _staged(event_type, work)


def emit_endpoint_changed(app: Application, endpoint: Endpoint, was_disabled: bool) -> None:
    """endpoint.updated, and endpoint.disabled / endpoint.enabled when `disabled` flipped."""
    emit_endpoint_event(ENDPOINT_UPDATED, app, endpoint)
    if endpoint.disabled != was_disabled:
        emit_endpoint_event(
            ENDPOINT_DISABLED if endpoint.disabled else ENDPOINT_ENABLED, app, endpoint
        )


def emit_delivery_events(
    attempts: Sequence[AttemptEvent], disabled: Sequence[DisabledEndpoint] = ()
) -> None:
    """message.attempt.* for attempts that crossed a threshold, then endpoint.disabled
    (`automatic`) for endpoints the recording disabled; never raises."""
    if not attempts and not disabled:
        return

    def work() -> None:
        for org_id, event_type, data in _delivery_events(attempts, disabled):
            emit(org_id, event_type, data)

    _staged("message.attempt", work)


def _column_by_id(id_column: Any, column: Any, ids: set[str]) -> dict[str, Any]:
    """{id: column} of the rows with these ids, in one query."""
    rows = db.session.execute(select(id_column, column).where(id_column.in_(ids))).tuples()
    return dict(rows.all())


def _delivery_events(
    attempts: Sequence[AttemptEvent], disabled: Sequence[DisabledEndpoint]
) -> list[tuple[str, str, dict[str, Any]]]:
    app_ids = {a.app_id for a in attempts} | {d.app_id for d in disabled}
    apps = {
        app.id: app
        for app in db.session.scalars(select(Application).where(Application.id.in_(app_ids)))
    }
    msg_ids = {a.msg_id for a in attempts}
    event_ids = _column_by_id(Message.id, Message.event_id, msg_ids)
    events = []
    for attempt in attempts:
        app = apps.get(attempt.app_id)
        if app is None or app.internal:
            continue
        data = {
            "appId": app.id,
            "appUid": app.uid,
            "msgId": attempt.msg_id,
            "msgEventId": event_ids.get(attempt.msg_id),
            "endpointId": attempt.endpoint_id,
            "lastAttempt": {
                "id": attempt.attempt_id,
                "responseStatusCode": attempt.status_code or 0,
                "timestamp": _iso(attempt.timestamp),
            },
        }
        events.append((app.org_id, attempt.event_type, data))
    endpoint_uids = _column_by_id(Endpoint.id, Endpoint.uid, {d.endpoint_id for d in disabled})
    for item in disabled:
        app = apps.get(item.app_id)
        if app is None or app.internal:
            continue
        data = {
            "appId": app.id,
            "appUid": app.uid,
            "endpointId": item.endpoint_id,
            "endpointUid": endpoint_uids.get(item.endpoint_id),
            "failSince": _iso(item.fail_since),
            "trigger": "automatic",
        }
        events.append((app.org_id, ENDPOINT_DISABLED, data))
    return events


def _task_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Svix's `data` of a finished task: `messages_purged` for a purge, else `messages_sent`
    with the endpoint and the window (Herald's task rows keep their own keys)."""
    if "purged" in data or kind == "application.purge_content":
        return {"messages_purged": int(data.get("purged", 0))}
    since, until = data.get("since"), data.get("until")
    return {
        "messages_sent": int(data.get("resent", 0)),
        "endp_id": data.get("endpointId"),
        "since": since.replace("+00:00", "Z") if isinstance(since, str) else None,
        "until": until.replace("+00:00", "Z") if isinstance(until, str) else None,
    }


def emit_task_finished(task: BackgroundTask) -> None:
    """background_task.finished for a task that is ending (finished or failed): call before
    the commit that ends it."""

    def work() -> None:
        data = {
            "taskId": task.id,
            "task": task.task,
            "status": task.status,
            "data": _task_data(task.task, dict(task.data)),
        }
        emit(task.org_id, TASK_FINISHED, data)

    _staged(TASK_FINISHED, work)
