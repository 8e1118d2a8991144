"""Attempt services: recovery selection and idempotency, destination status, stats windows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from api.errors import ApiError
from api.extensions import db
from api.models import (
    Application,
    BackgroundTask,
    Delivery,
    Endpoint,
    MessageStatus,
    Organization,
    TriggerType,
)
from api.models.common import utcnow
from api.services import destinations, recovery
from api.services.attempts import payload_available, resend_message
from tests.api import attempts_support
from tests.api.factories import add_attempt, add_delivery, add_endpoint, add_message

HOUR = 3600.0


@pytest.fixture
def application(db_session: object) -> Application:
    """An application of a fresh org."""
    org = Organization(name="svc-org")
    db.session.add(org)
    db.session.flush()
    app = Application(org_id=org.id, name="Svc", uid="svc")
    db.session.add(app)
    db.session.commit()
    return app


@pytest.fixture
def endpoint(application: Application) -> Endpoint:
    """The endpoint being recovered."""
    return add_endpoint(application, uid="target")


enqueued = attempts_support.enqueued  # tasks published by name, kept in memory


def failed_once(app: Application, endpoint: Endpoint, ago: float, **fields: Any) -> Any:
    """A message whose delivery to the endpoint failed `ago` seconds ago."""
    message = add_message(app, ago=ago + 1, **fields)
    add_attempt(
        add_delivery(message, endpoint, MessageStatus.FAIL), MessageStatus.FAIL, 500, ago=ago
    )
    return message


def manual_deliveries(endpoint: Endpoint) -> list[Delivery]:
    """The endpoint's MANUAL deliveries."""
    return list(
        db.session.scalars(
            select(Delivery).where(
                Delivery.endpoint_id == endpoint.id, Delivery.trigger_type == TriggerType.MANUAL
            )
        )
    )


def start(app: Application, endpoint: Endpoint, days: float = 2) -> BackgroundTask:
    """Start a recovery of the last `days` days."""
    since = utcnow() - timedelta(days=days)
    return recovery.start_recovery(app.org_id, app.uid or "", endpoint.id, since, None)


def test_run_recovery_resends_only_messages_still_failing_in_window(
    application: Application, endpoint: Endpoint, enqueued: list[tuple[Any, ...]]
) -> None:
    wanted = failed_once(application, endpoint, ago=HOUR)
    recovered = failed_once(application, endpoint, ago=2 * HOUR)
    add_attempt(
        add_delivery(recovered, endpoint, MessageStatus.SUCCESS), MessageStatus.SUCCESS, ago=HOUR
    )
    failed_once(application, endpoint, ago=72 * HOUR)  # before the window
    failed_once(application, endpoint, ago=HOUR, payload=None)  # nothing left to send
    failed_once(application, add_endpoint(application), ago=HOUR)  # another endpoint
    task = start(application, endpoint)
    assert enqueued == [("herald.recover_endpoint", task.id)]

    assert recovery.run_recovery(task.id) == 1
    resent = manual_deliveries(endpoint)
    assert [d.msg_id for d in resent] == [wanted.id]
    assert resent[0].status == MessageStatus.SENDING and resent[0].next_attempt_at is not None
    assert enqueued[1:] == [("herald.pump",)]
    refreshed = db.session.get(BackgroundTask, task.id)
    assert refreshed.status == "finished" and refreshed.data["resent"] == 1


def test_run_recovery_twice_resends_once(
    application: Application, endpoint: Endpoint, enqueued: list[tuple[Any, ...]]
) -> None:
    failed_once(application, endpoint, ago=HOUR)
    task = start(application, endpoint)
    assert recovery.run_recovery(task.id) == 1
    assert recovery.run_recovery(task.id) == 0
    assert len(manual_deliveries(endpoint)) == 1


def test_run_recovery_of_disabled_endpoint_sends_nothing(
    application: Application, endpoint: Endpoint, enqueued: list[tuple[Any, ...]]
) -> None:
    failed_once(application, endpoint, ago=HOUR)
    task = start(application, endpoint)
    endpoint.disabled = True
    db.session.commit()
    assert recovery.run_recovery(task.id) == 0
    assert manual_deliveries(endpoint) == []
    assert db.session.get(BackgroundTask, task.id).status == "finished"


def test_run_recovery_marks_task_failed_when_endpoint_is_gone(
    application: Application, enqueued: list[tuple[Any, ...]]
) -> None:
    task = BackgroundTask(
        org_id=application.org_id, task="endpoint.recover", data={"endpointId": "ep_missing"}
    )
    db.session.add(task)
    db.session.commit()
    assert recovery.run_recovery(task.id) == 0
    assert db.session.get(BackgroundTask, task.id).status == "failed"
    assert recovery.run_recovery("qtask_unknown") == 0


def test_recoverable_messages_caps_and_orders_by_id(
    application: Application, endpoint: Endpoint
) -> None:
    first = failed_once(application, endpoint, ago=3 * HOUR)
    failed_once(application, endpoint, ago=2 * HOUR)
    since, until = utcnow() - timedelta(days=1), utcnow()
    query = recovery.recoverable_messages(endpoint.id, since, until, limit=1)
    assert [m.id for m in db.session.scalars(query)] == [first.id]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([MessageStatus.FAIL, MessageStatus.SUCCESS, MessageStatus.SENDING], MessageStatus.SENDING),
        ([MessageStatus.FAIL, MessageStatus.SUCCESS], MessageStatus.SUCCESS),
        ([MessageStatus.FAIL, MessageStatus.CANCELED], MessageStatus.FAIL),
        ([MessageStatus.CANCELED], MessageStatus.CANCELED),
        ([MessageStatus.PENDING, MessageStatus.FAIL], MessageStatus.PENDING),
    ],
)
def test_destination_status_takes_most_active_delivery(
    application: Application, endpoint: Endpoint, statuses: list[int], expected: int
) -> None:
    message = add_message(application)
    for status in statuses:
        add_delivery(message, endpoint, status)
    page = destinations.list_attempted_destinations(
        application.org_id, "svc", message.id, limit=10, iterator=None
    )
    assert [v.status for v in page.data] == [expected]
    stats = destinations.endpoint_stats(application.org_id, "svc", "target", None, None)
    assert stats[MessageStatus(expected).name.lower()] == 1 and sum(stats.values()) == 1


def test_stats_window_defaults_to_last_28_days() -> None:
    since, until = destinations.stats_window(None, None)
    assert until - since == timedelta(days=28)
    assert abs((until - utcnow()).total_seconds()) < 5


@pytest.mark.parametrize(("since_days_ago", "until_days_ago"), [(30, 0), (1, 2), (1, 1), (0, -1)])
def test_stats_window_rejects_invalid_ranges(since_days_ago: int, until_days_ago: int) -> None:
    now = utcnow()
    with pytest.raises(ApiError) as raised:
        destinations.stats_window(
            now - timedelta(days=since_days_ago), now - timedelta(days=until_days_ago)
        )
    assert (raised.value.status, raised.value.code) == (400, "invalid_range")


def test_payload_available_needs_payload_and_unexpired_retention(
    application: Application,
) -> None:
    assert payload_available(add_message(application))
    assert not payload_available(add_message(application, payload=None))
    past = utcnow() - timedelta(minutes=1)
    assert not payload_available(add_message(application, expiration=past))


def test_resend_message_to_disabled_endpoint_returns_none(
    application: Application, enqueued: list[tuple[Any, ...]]
) -> None:
    message = add_message(application)
    off = add_endpoint(application, disabled=True)
    assert resend_message(application.org_id, "svc", message.id, off.id) is None
    assert manual_deliveries(off) == [] and enqueued == []


def _queued_recoveries() -> list[str]:
    """Task ids of herald.recover_endpoint messages waiting in the real broker's queue."""
    import json

    from api.extensions import get_redis

    found = []
    for raw in get_redis().lrange("herald", 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") == recovery.RECOVER_TASK:
            found.append(message["headers"]["argsrepr"])
    return found


def test_resume_stale_recoveries_reenqueues_only_stale_running_tasks(
    application: Application, endpoint: Endpoint
) -> None:
    with freeze_time("2026-01-01 00:00:00") as clock:
        stale = start(application, endpoint)  # its publish "was lost": we resume it below
        clock.tick(timedelta(minutes=4))
        fresh = start(application, endpoint)
        done = start(application, endpoint)
        recovery.run_recovery(done.id)
        clock.tick(timedelta(minutes=2))  # stale: 6 min old, fresh: 2 min, done: finished
        before = _queued_recoveries()
        assert recovery.resume_stale_recoveries() == [stale.id]
        after = _queued_recoveries()
        # LPUSH: the newest task is at the head of the list, whatever was queued before
        assert len(after) == len(before) + 1 and stale.id in after[0]
        assert recovery.resume_stale_recoveries() == []  # touched: waits another 5 minutes
        clock.tick(timedelta(minutes=6))
        assert sorted(recovery.resume_stale_recoveries()) == sorted([stale.id, fresh.id])
    assert db.session.get(BackgroundTask, done.id).status == "finished"
