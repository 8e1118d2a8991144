"""tests/e2e/settle.py tells a late message (a delivery row still open) from a lost one."""

from __future__ import annotations

import re
import threading
import time

import pytest
from flask import Flask
from sqlalchemy import text

from api.extensions import db
from api.models import MessageStatus
from tests.api.factories import seed
from tests.conftest import DATABASE_URL
from tests.e2e.settle import settle
from tests.support import Received, Receiver

pytestmark = pytest.mark.usefixtures("committed_db")


def message(app: Flask, *, final: bool) -> str:
    """A committed message with one delivery row: open (leased) or final (failed for good)."""
    with app.app_context():
        delivery = seed("http://127.0.0.1:9/hook")
        if final:
            delivery.status = MessageStatus.FAIL
            delivery.next_attempt_at = None
            db.session.commit()
        msg_id = delivery.msg_id
        db.session.remove()
    return msg_id


def arrive(receiver: Receiver, msg_id: str) -> None:
    with receiver.lock:
        receiver.requests.append(Received("/hook", {"webhook-id": msg_id}, b"{}"))


def test_open_delivery_is_late_final_one_is_lost_and_the_wait_goes_on_while_late(
    app: Flask,
) -> None:
    receiver = Receiver(url="http://127.0.0.1:9/hook")
    received, late, lost = (message(app, final=f) for f in (False, False, True))
    arrive(receiver, received)
    arrive(receiver, received)  # a duplicate
    started = time.monotonic()
    outcome = settle(receiver, [received, late, lost], DATABASE_URL, expected_within=0.3, bound=1.5)
    assert time.monotonic() - started >= 1.5  # kept waiting for the late one up to the bound
    assert not outcome.ok
    assert (outcome.delivered, outcome.duplicates) == (1, 1)
    assert list(outcome.late) == [late] and "sending/0 attempts/open" in outcome.late[late]
    assert list(outcome.lost) == [lost] and "fail/0 attempts/final" in outcome.lost[lost]
    problems = outcome.problems()
    assert "LOST 1: no delivery left to try and never received" in problems
    assert re.search(
        r"LATE 1 after [0-9.]+ s: a delivery is still open \(pending/leased\), not lost", problems
    )


def test_only_lost_messages_end_the_wait_early(app: Flask) -> None:
    receiver = Receiver(url="http://127.0.0.1:9/hook")
    lost = message(app, final=True)
    outcome = settle(receiver, [lost, "msg_never_stored"], DATABASE_URL, expected_within=0.2)
    assert outcome.waited < 5  # nothing left would deliver them: no point waiting to the bound
    assert outcome.late == {}
    assert outcome.lost == {lost: "fail/0 attempts/final", "msg_never_stored": "no delivery row"}


def test_a_late_message_that_arrives_within_the_bound_is_fine(app: Flask) -> None:
    receiver = Receiver(url="http://127.0.0.1:9/hook")
    msg_id = message(app, final=False)

    def deliver_later() -> None:
        time.sleep(1.0)
        arrive(receiver, msg_id)
        with app.app_context():  # the worker records the success: the row is final
            db.session.execute(
                text("UPDATE delivery SET status = 0, next_attempt_at = NULL WHERE msg_id = :m"),
                {"m": msg_id},
            )
            db.session.commit()
            db.session.remove()

    thread = threading.Thread(target=deliver_later)
    thread.start()
    outcome = settle(receiver, [msg_id], DATABASE_URL, expected_within=0.3, bound=30, quiet=0.2)
    thread.join()
    assert outcome.ok, outcome.problems()
    assert 1.0 <= outcome.waited < 30
