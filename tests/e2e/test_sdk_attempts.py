"""The official svix SDK on the live stack: attempt log, resend, destinations, recover, stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from svix.api import (
    ApplicationIn,
    EndpointGetStatsOptions,
    EndpointIn,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageIn,
    RecoverIn,
    Svix,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import (
    MessageAttemptTriggerType,
    MessageStatus,
    MessageStatusText,
    StatusCodeClass,
)

from api.extensions import db
from api.models import BackgroundTask
from tests.support import Receiver, eventually


def setup_app(sdk: Svix, receiver: Receiver) -> tuple[str, str]:
    """An app `shop` with endpoint `rx` pointing at the receiver; returns their ids."""
    app = sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    endpoint = sdk.endpoint.create(app.id, EndpointIn(url=receiver.url, uid="rx"))
    return app.id, endpoint.id


def attempts_of(sdk: Svix, msg_id: str, count: int) -> list[Any] | None:
    """The message's attempts once there are at least `count` of them."""
    data = sdk.message_attempt.list_by_msg("shop", msg_id).data
    return data if len(data) >= count else None


def test_sdk_lists_gets_and_resends_attempts(
    sdk: Svix, receiver: Receiver, celery_worker: object
) -> None:
    app_id, endpoint_id = setup_app(sdk, receiver)
    msg = sdk.message.create(
        "shop", MessageIn(event_type="user.signup", payload={"a": 1}, event_id="evt-1")
    )
    receiver.wait_for(1)
    first = eventually(lambda: attempts_of(sdk, msg.id, 1))[0]
    assert (first.status, first.status_text) == (MessageStatus.SUCCESS, MessageStatusText.SUCCESS)
    assert first.trigger_type == MessageAttemptTriggerType.SCHEDULED
    assert (first.endpoint_id, first.url, first.response_status_code) == (
        endpoint_id,
        receiver.url,
        200,
    )
    assert first.response == "{}"  # the SDK asks with_content=false

    got = sdk.message_attempt.get("shop", "evt-1", first.id)
    assert got.id == first.id and got.response == "ok"
    by_endpoint = sdk.message_attempt.list_by_endpoint(
        "shop", "rx", MessageAttemptListByEndpointOptions(with_msg=True)
    )
    assert [a.id for a in by_endpoint.data] == [first.id]
    assert by_endpoint.data[0].msg is not None and by_endpoint.data[0].msg.id == msg.id
    assert by_endpoint.done is True

    assert sdk.message_attempt.resend("shop", "evt-1", "rx") is not None
    receiver.wait_for(2)
    latest = eventually(lambda: attempts_of(sdk, msg.id, 2))[0]
    assert latest.trigger_type == MessageAttemptTriggerType.MANUAL
    only_ok = sdk.message_attempt.list_by_msg(
        "shop",
        msg.id,
        MessageAttemptListByMsgOptions(status=MessageStatus.SUCCESS, endpoint_id="rx", limit=1),
    )
    assert len(only_ok.data) == 1 and only_ok.done is False

    messages = sdk.message_attempt.list_attempted_messages("shop", "rx").data
    assert [(m.id, m.status_text) for m in messages] == [(msg.id, MessageStatusText.SUCCESS)]
    destinations = sdk.message_attempt.list_attempted_destinations(app_id, msg.id).data
    assert [(d.id, d.status) for d in destinations] == [(endpoint_id, MessageStatus.SUCCESS)]
    stats = sdk.endpoint.get_stats("shop", "rx")
    assert (stats.success, stats.fail, stats.sending, stats.pending, stats.canceled) == (
        1,
        0,
        0,
        0,
        0,
    )


def test_sdk_recover_resends_failed_messages(
    app: Flask,
    sdk: Svix,
    receiver: Receiver,
    celery_worker: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "RETRY_SCHEDULE", [])  # the first failure is final
    setup_app(sdk, receiver)
    receiver.status = 503
    msg = sdk.message.create("shop", MessageIn(event_type="order.paid", payload={"n": 1}))
    receiver.wait_for(1)
    failed = eventually(lambda: attempts_of(sdk, msg.id, 1))[0]
    assert (failed.status_text, failed.response_status_code) == (MessageStatusText.FAIL, 503)
    server_errors = MessageAttemptListByEndpointOptions(status_code_class=StatusCodeClass.CODE5XX)
    five_xx = sdk.message_attempt.list_by_endpoint("shop", "rx", server_errors)
    assert [a.id for a in five_xx.data] == [failed.id]
    assert sdk.endpoint.get_stats("shop", "rx").fail == 1

    receiver.status = 200
    since = datetime.now(UTC) - timedelta(hours=1)
    task = sdk.endpoint.recover("shop", "rx", RecoverIn(since=since))
    assert task.id.startswith("qtask_")
    assert (task.status.value, task.task.value) == ("running", "endpoint.recover")
    receiver.wait_for(2)
    eventually(lambda: attempts_of(sdk, msg.id, 2))
    attempted = sdk.message_attempt.list_attempted_messages("shop", "rx").data
    assert [m.status for m in attempted] == [MessageStatus.SUCCESS]

    def finished() -> bool:
        with app.app_context():
            return db.session.get(BackgroundTask, task.id).status == "finished"

    eventually(finished)


def test_sdk_errors_are_typed(sdk: Svix, receiver: Receiver) -> None:
    setup_app(sdk, receiver)
    with pytest.raises(HttpError) as missing:
        sdk.message_attempt.resend("shop", "msg_nope", "rx")
    assert missing.value.status_code == 404
    with pytest.raises(HTTPValidationError) as too_long:
        sdk.endpoint.recover("shop", "rx", RecoverIn(since=datetime.now(UTC) - timedelta(days=20)))
    assert too_long.value.detail[0].loc == ["body", "since"]
    now = datetime.now(UTC)
    with pytest.raises(HttpError) as bad_range:
        sdk.endpoint.get_stats(
            "shop", "rx", EndpointGetStatsOptions(since=now - timedelta(days=40), until=now)
        )
    assert (bad_range.value.status_code, bad_range.value.code) == (400, "invalid_range")
