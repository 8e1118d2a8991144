"""The official svix SDK on the live stack: replay-missing and background tasks, attempt and
message expunges, precheck, and `expanded_statuses` on a canceled delivery."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from svix.api import (
    ApplicationIn,
    BackgroundTaskListOptions,
    BulkExpungeContentsIn,
    EndpointIn,
    EndpointPatch,
    MessageAttemptListAttemptedMessagesOptions,
    MessageGetOptions,
    MessageIn,
    MessagePrecheckIn,
    ReplayIn,
    Svix,
)
from svix.models import (
    BackgroundTaskStatus,
    BackgroundTaskType,
    BulkExpungeStatus,
    MessageAttemptTriggerType,
    MessageStatus,
)

from api.services.delivery import outbox
from tests.support import Receiver, eventually


def finished_task(sdk: Svix, task_id: str) -> Any:
    """The task once it is no longer running."""
    task = sdk.background_task.get(task_id)
    return task if task.status != BackgroundTaskStatus.RUNNING else None


def test_sdk_replay_missing_sends_history_to_a_new_endpoint(
    sdk: Svix, receiver: Receiver, celery_worker: object
) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    before = [  # sent while the app had no endpoint: nothing was delivered
        sdk.message.create("shop", MessageIn(event_type="user.signup", payload={"n": n}))
        for n in (1, 2)
    ]
    sdk.endpoint.create("shop", EndpointIn(url=receiver.url, uid="rx"))
    since = datetime.now(UTC) - timedelta(hours=1)
    started = sdk.endpoint.replay_missing("shop", "rx", ReplayIn(since=since))
    assert started.id.startswith("qtask_")
    assert (started.status, started.task) == (
        BackgroundTaskStatus.RUNNING,
        BackgroundTaskType.ENDPOINT_REPLAY,
    )
    received = receiver.wait_for(2)
    assert sorted(json.loads(r.body)["n"] for r in received) == [1, 2]
    done = eventually(lambda: finished_task(sdk, started.id), what="replay finished")
    assert (done.status, done.data) == (BackgroundTaskStatus.FINISHED, {"messagesSent": 2})
    attempts = eventually(lambda: sdk.message_attempt.list_by_msg("shop", before[0].id).data)
    assert attempts[0].trigger_type == MessageAttemptTriggerType.MANUAL

    again = sdk.endpoint.replay_missing("shop", "rx", ReplayIn(since=since))
    redone = eventually(lambda: finished_task(sdk, again.id), what="second replay finished")
    assert redone.data == {"messagesSent": 0}  # everything was sent once already
    listed = sdk.background_task.list(
        BackgroundTaskListOptions(task=BackgroundTaskType.ENDPOINT_REPLAY)
    )
    assert [t.id for t in listed.data] == [again.id, started.id] and listed.done is True
    assert len(receiver.requests) == 2


def test_sdk_expunges_attempt_content_and_message_payloads(
    sdk: Svix, receiver: Receiver, celery_worker: object
) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    sdk.application.create(ApplicationIn(name="Quiet", uid="quiet"))
    sdk.endpoint.create("shop", EndpointIn(url=receiver.url, uid="rx"))
    assert sdk.message.precheck("shop", MessagePrecheckIn(event_type="user.signup")).active
    assert not sdk.message.precheck("quiet", MessagePrecheckIn(event_type="user.signup")).active

    first = sdk.message.create("shop", MessageIn(event_type="user.signup", payload={"n": 1}))
    second = sdk.message.create("shop", MessageIn(event_type="user.signup", payload={"n": 2}))
    receiver.wait_for(2)
    [attempt] = eventually(lambda: sdk.message_attempt.list_by_msg("shop", first.id).data)
    assert sdk.message_attempt.get("shop", first.id, attempt.id).response == "ok"
    sdk.message_attempt.expunge_content("shop", first.id, attempt.id)
    assert sdk.message_attempt.get("shop", first.id, attempt.id).response == "EXPUNGED"

    bulk = sdk.message.bulk_expunge_content("shop", BulkExpungeContentsIn(ids=[first.id, "nope"]))
    assert bulk.results == {
        first.id: BulkExpungeStatus.EXPUNGED,
        "nope": BulkExpungeStatus.NOT_FOUND,
    }
    with_content = MessageGetOptions(with_content=True)
    assert sdk.message.get("shop", first.id, with_content).payload == {"expired": True}
    assert sdk.message.get("shop", second.id, with_content).payload == {"n": 2}

    purge = sdk.message.expunge_all_contents("shop")
    assert purge.task == BackgroundTaskType.APPLICATION_PURGE_CONTENT
    done = eventually(lambda: finished_task(sdk, purge.id), what="purge finished")
    assert (done.status, done.data) == (BackgroundTaskStatus.FINISHED, {"messagesPurged": 1})
    assert sdk.message.get("shop", second.id, with_content).payload == {"expired": True}


def test_sdk_sees_a_canceled_delivery_as_success_unless_expanded_statuses(
    app: Flask, sdk: Svix, receiver: Receiver, celery_worker: object
) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    sdk.endpoint.create("shop", EndpointIn(url=receiver.url, uid="rx"))
    due = datetime.now(UTC) + timedelta(seconds=2)
    sdk.message.create("shop", MessageIn(event_type="user.signup", payload={}, deliver_at=due))
    sdk.endpoint.patch("shop", "rx", EndpointPatch(disabled=True))  # before it is due
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.2)
    with app.app_context():
        outbox.wake(force=True)  # no scheduler runs here: a pump claims the due row and cancels it

    def statuses(expanded: bool | None) -> list[MessageStatus]:
        options = MessageAttemptListAttemptedMessagesOptions(expanded_statuses=expanded)
        return [
            m.status
            for m in sdk.message_attempt.list_attempted_messages("shop", "rx", options).data
        ]

    # the SDK sends expanded_statuses=true unless told otherwise
    eventually(lambda: statuses(None) == [MessageStatus.CANCELED], what="delivery canceled")
    assert statuses(True) == [MessageStatus.CANCELED]
    assert statuses(False) == [MessageStatus.SUCCESS]
    assert receiver.requests == []
