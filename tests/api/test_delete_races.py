"""Deleting an application or an endpoint while a worker records its deliveries' attempts:
both sides finish (no deadlock, no 500), and the rows are gone."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.extensions import db
from api.models import Application, Delivery, Endpoint, Message, MessageStatus
from api.models.common import utcnow
from api.services import tokens
from api.services.delivery import outbox, record
from api.services.delivery.claim import claim_jobs
from api.services.delivery.http_client import Outcome
from api.services.delivery.job import Job
from api.services.delivery.send import Result

pytestmark = [pytest.mark.postgresql_only, pytest.mark.usefixtures("committed_db")]

TRIES = 50
RECORDERS = 4  # worker threads recording at once
DELIVERIES = 4 * RECORDERS


def _seed(app: Flask, name: str) -> tuple[str, str, str, list[Job]]:
    """(token, app id, endpoint id, leased jobs) committed for other threads to see."""
    with app.app_context():
        org, token = tokens.create_token(name)
        application = Application(org_id=org.id, name=name)
        db.session.add(application)
        db.session.flush()
        endpoint = Endpoint(app_id=application.id, url="https://example.com/hook", secret="x")
        messages = [
            Message(
                app_id=application.id,
                org_id=org.id,
                event_type="user.signup",
                payload='{"a":1}',
                expiration=utcnow() + timedelta(days=90),
            )
            for _ in range(DELIVERIES)
        ]
        db.session.add_all([endpoint, *messages])
        db.session.flush()
        for message in messages:
            outbox.add_delivery(message, endpoint)
        db.session.commit()
        cap = app.config["ENDPOINT_CONCURRENCY"]
        app.config["ENDPOINT_CONCURRENCY"] = DELIVERIES  # all of them in flight at once
        try:
            jobs = [job for job in claim_jobs(1000) if job.endpoint_id == endpoint.id]
        finally:
            app.config["ENDPOINT_CONCURRENCY"] = cap
        assert len(jobs) == DELIVERIES
        return token, application.id, endpoint.id, jobs


def _race(app: Flask, jobs: list[Job], path: str, token: str) -> list[Any]:
    """Record the jobs' (failed) attempts in RECORDERS threads, in batches of two as a pump
    does, while another DELETEs `path`."""
    errors: list[Any] = []
    start = threading.Barrier(RECORDERS + 1)

    def recorder(share: list[Job]) -> None:
        with app.app_context():
            start.wait()
            for batch in (share[:2], share[2:]):
                try:
                    record.record_results([Result(job, Outcome(500, "busy", 3)) for job in batch])
                except Exception as exc:  # a deadlock victim, or anything else
                    errors.append(repr(exc))
                    db.session.rollback()
            db.session.remove()

    def delete() -> None:
        start.wait()
        response = app.test_client().delete(path, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 204:
            errors.append((response.status_code, response.get_json()))

    threads = [
        threading.Thread(target=recorder, args=(jobs[i::RECORDERS],)) for i in range(RECORDERS)
    ]
    threads.append(threading.Thread(target=delete))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a side never finished"
    return errors


@pytest.mark.parametrize("target", ["application", "endpoint"])
def test_delete_while_attempts_are_recorded_never_fails(app: Flask, target: str) -> None:
    errors = []
    for attempt in range(TRIES):
        token, app_id, endpoint_id, jobs = _seed(app, f"race-{target}-{attempt}")
        path = f"/api/v1/app/{app_id}"
        if target == "endpoint":
            path += f"/endpoint/{endpoint_id}"
        errors += _race(app, jobs, path, token)
        with app.app_context():
            assert db.session.get(Endpoint, endpoint_id) is None
            left = select(func.count()).where(
                Delivery.endpoint_id == endpoint_id, Delivery.status == MessageStatus.SENDING
            )
            assert db.session.scalar(left) == 0
            if target == "application":
                assert db.session.get(Application, app_id) is None
    assert errors == []
