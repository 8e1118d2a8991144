"""Deliver one leased delivery: check, throttle, POST (outside any transaction), record.

Entry point: `deliver(delivery_id, lease_token)`, run by the `herald.deliver` task. Every
write is fenced on the lease token, so a stale or duplicate execution changes nothing.
"""

from __future__ import annotations

import logging
import random
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, or_, select, update

from api.config import ROOT
from api.extensions import db, get_redis
from api.models import Delivery, Endpoint, Message, MessageAttempt, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services import retry, throttle
from api.services.signing import live_keys, webhook_headers
from api.services.ssrf import Outcome, post

logger = logging.getLogger(__name__)


def _version() -> str:
    """Herald's version from pyproject.toml (no installed distribution needed)."""
    try:
        with open(ROOT / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0"


USER_AGENT = f"Herald-Webhooks/{_version()}"

DEFAULT_ENDPOINT_CONCURRENCY = 4
THROTTLE_INLINE_WAIT = 1.0  # a throttle wait up to this long is slept in the task


@dataclass(frozen=True)
class Job:
    """What one attempt needs, copied out of the database before the HTTP call."""

    delivery_id: str
    lease_token: str
    msg_id: str
    app_id: str
    endpoint_id: str
    url: str
    trigger_type: int
    attempt_count: int
    body: bytes
    keys: list[str]
    headers: dict[str, str]
    throttle_rate: int | None


def _fenced(delivery_id: str, token: str, **values: object) -> bool:
    """Update the delivery only while this lease holds it; False when the lease is stale."""
    result = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.lease_token == token,
               Delivery.status == MessageStatus.SENDING)
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def load_job(delivery_id: str, token: str) -> Job | str:
    """Renew the lease and snapshot the job; or a reason string (stale / canceled)."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["LEASE_SECONDS"])
    row = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.lease_token == token,
               Delivery.status == MessageStatus.SENDING)
        .values(next_attempt_at=now + lease)
        .returning(Delivery.msg_id, Delivery.endpoint_id, Delivery.trigger_type,
                   Delivery.attempt_count),
        execution_options={"synchronize_session": False},
    ).first()
    if row is None:
        db.session.rollback()
        return "stale"
    endpoint = db.session.get(Endpoint, row.endpoint_id)
    payload = db.session.execute(select(Message.payload).where(Message.id == row.msg_id)).scalar()
    if endpoint is None or endpoint.disabled or payload is None:
        reason = "payload_expired" if endpoint is not None and not endpoint.disabled else "disabled"
        _fenced(delivery_id, token, status=MessageStatus.CANCELED, next_attempt_at=None,
                lease_token=None, updated_at=now)
        db.session.commit()
        return reason
    job = Job(
        delivery_id=delivery_id, lease_token=token, msg_id=row.msg_id, app_id=endpoint.app_id,
        endpoint_id=endpoint.id, url=endpoint.url, trigger_type=row.trigger_type,
        attempt_count=row.attempt_count, body=payload.encode(),
        keys=live_keys(endpoint.secret, endpoint.old_keys, now),
        headers=dict(endpoint.headers or {}), throttle_rate=endpoint.throttle_rate,
    )
    db.session.commit()  # the lease renewal; no transaction (or connection) held during the POST
    return job


def park(job: Job, seconds: float) -> bool:
    """Put the delivery back for later without counting an attempt (throttle / busy)."""
    ok = _fenced(job.delivery_id, job.lease_token, lease_token=None,
                 next_attempt_at=utcnow() + timedelta(seconds=seconds), updated_at=utcnow())
    db.session.commit()
    return ok


def _next_state(job: Job, outcome: Outcome, now: datetime) -> tuple[int, datetime | None]:
    """(delivery status, next attempt time) after this attempt."""
    if outcome.ok:
        return MessageStatus.SUCCESS, None
    if job.trigger_type == TriggerType.MANUAL:
        return MessageStatus.FAIL, None
    delay = retry.next_delay(
        job.attempt_count + 1, current_app.config["RETRY_SCHEDULE"],
        status_code=outcome.status_code, timed_out=outcome.timed_out,
        retry_after=outcome.retry_after, now=now,
    )
    if delay is None:
        return MessageStatus.FAIL, None
    return MessageStatus.SENDING, now + timedelta(seconds=delay)


def _track_endpoint_health(job: Job, ok: bool, now: datetime) -> None:
    """Reset the failure clock on success; start it, or disable the endpoint, on failure."""
    if ok:
        db.session.execute(
            update(Endpoint)
            .where(Endpoint.id == job.endpoint_id, Endpoint.first_failure_at.is_not(None))
            .values(first_failure_at=None),
            execution_options={"synchronize_session": False},
        )
        return
    cutoff = now - timedelta(seconds=current_app.config["ENDPOINT_DISABLE_AFTER"])
    expired = Endpoint.first_failure_at <= cutoff
    result = db.session.execute(
        update(Endpoint)
        .where(Endpoint.id == job.endpoint_id,
               or_(Endpoint.first_failure_at.is_(None), expired & ~Endpoint.disabled))
        .values(first_failure_at=case((Endpoint.first_failure_at.is_(None), now),
                                      else_=Endpoint.first_failure_at),
                disabled=case((expired, True), else_=Endpoint.disabled)),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount and db.session.get(Endpoint, job.endpoint_id).disabled:  # type: ignore[attr-defined,union-attr]
        logger.warning("endpoint.auto_disabled", extra={"endpoint_id": job.endpoint_id})


def record_outcome(job: Job, outcome: Outcome, now: datetime | None = None) -> str:
    """Write the attempt and the delivery's next state, fenced on the lease token."""
    moment = now or utcnow()
    status, next_at = _next_state(job, outcome, moment)
    if not _fenced(job.delivery_id, job.lease_token, status=status, next_attempt_at=next_at,
                   attempt_count=job.attempt_count + 1, lease_token=None, updated_at=moment):
        db.session.rollback()
        logger.info("delivery.stale_result", extra={"delivery_id": job.delivery_id})
        return "stale"
    db.session.add(MessageAttempt(
        msg_id=job.msg_id, endpoint_id=job.endpoint_id, delivery_id=job.delivery_id,
        app_id=job.app_id, url=job.url, response=outcome.response,
        response_status_code=outcome.status_code, response_duration_ms=outcome.duration_ms,
        status=MessageStatus.SUCCESS if outcome.ok else MessageStatus.FAIL,
        trigger_type=job.trigger_type, next_attempt_at=next_at, created_at=moment,
    ))
    _track_endpoint_health(job, outcome.ok, moment)
    db.session.commit()
    label = {0: "success", 2: "failed"}.get(int(status), "retry")
    logger.info("delivery.attempted", extra={
        "delivery_id": job.delivery_id, "msg_id": job.msg_id, "endpoint_id": job.endpoint_id,
        "status_code": outcome.status_code, "result": label, "duration_ms": outcome.duration_ms,
    })
    return label


def send(job: Job) -> Outcome:
    """POST the exact stored body with fresh signatures (timestamp taken now)."""
    config = current_app.config
    timestamp = int(time.time())
    headers = {
        **job.headers,  # custom headers first: they can never replace ours
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **webhook_headers(job.msg_id, timestamp, job.body, job.keys),
    }
    return post(job.url, job.body, headers, float(config["REQUEST_TIMEOUT"]),
                config["WHITELIST_SUBNETS"])


def deliver(delivery_id: str, lease_token: str) -> str:
    """Run one attempt of a leased delivery; returns what happened (for logs and tests)."""
    job = load_job(delivery_id, lease_token)
    if isinstance(job, str):
        return job
    config = current_app.config
    client = get_redis()
    holder = f"{delivery_id}:{lease_token}"
    limit = int(config.get("ENDPOINT_CONCURRENCY", DEFAULT_ENDPOINT_CONCURRENCY))
    hold = 2 * float(config["REQUEST_TIMEOUT"]) + THROTTLE_INLINE_WAIT + 10
    if not throttle.acquire_slot(client, job.endpoint_id, holder, limit, hold):
        park(job, min(float(config["REQUEST_TIMEOUT"]), 5.0) * random.uniform(0.5, 1.5))
        return "busy"
    try:
        if job.throttle_rate:
            wait = throttle.reserve_slot(client, job.endpoint_id, delivery_id,
                                         float(job.throttle_rate), THROTTLE_INLINE_WAIT)
            if wait > THROTTLE_INLINE_WAIT:
                park(job, wait)
                return "throttled"
            if wait > 0:
                time.sleep(wait)
        outcome = send(job)
    finally:
        throttle.release_slot(client, job.endpoint_id, holder)
    return record_outcome(job, outcome)
