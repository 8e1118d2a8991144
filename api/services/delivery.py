"""Deliver one leased delivery: check, throttle, POST (outside any transaction), record.

Entry point: `deliver(delivery_id, lease_token)`, run by the `herald.deliver` task. Every
write is fenced on the lease token, so a stale or duplicate execution changes nothing.
"""

from __future__ import annotations

import logging
import random
import time
import tomllib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, insert, select, update

from api.config import ROOT
from api.extensions import db, get_redis
from api.ids import new_id
from api.models import Delivery, Endpoint, Message, MessageAttempt, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services import driver, retry, throttle
from api.services.dispatch import claim_next_for_endpoint, per_endpoint_limit
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

THROTTLE_INLINE_WAIT = 1.0  # a throttle wait up to this long is slept in the task
CHAIN_MAX = 100  # deliveries one task may go on with after a success (same endpoint)
CHAIN_SECONDS = 10.0


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
    first_failure_at: datetime | None = None


DELIVERY, ENDPOINT, MESSAGE = Delivery.__table__, Endpoint.__table__, Message.__table__


def _fenced(delivery_id: str, token: str, **values: object) -> bool:
    """Update the delivery only while this lease holds it; False when the lease is stale."""
    result = db.session.execute(
        update(DELIVERY)
        .where(
            DELIVERY.c.id == delivery_id,
            DELIVERY.c.lease_token == token,
            DELIVERY.c.status == MessageStatus.SENDING,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_LOAD = (
    select(
        DELIVERY.c.msg_id,
        DELIVERY.c.trigger_type,
        DELIVERY.c.attempt_count,
        DELIVERY.c.next_attempt_at,
        ENDPOINT.c.id.label("endpoint_id"),
        ENDPOINT.c.app_id,
        ENDPOINT.c.url,
        ENDPOINT.c.secret,
        ENDPOINT.c.old_keys,
        ENDPOINT.c.headers,
        ENDPOINT.c.throttle_rate,
        ENDPOINT.c.disabled,
        ENDPOINT.c.first_failure_at,
        MESSAGE.c.payload,
    )
    .select_from(
        DELIVERY.join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id).join(
            MESSAGE, MESSAGE.c.id == DELIVERY.c.msg_id
        )
    )
    .where(
        DELIVERY.c.id == bindparam("delivery_id"),
        DELIVERY.c.lease_token == bindparam("token"),
        DELIVERY.c.status == MessageStatus.SENDING,
    )
)

# PostgreSQL, one round trip: the fenced update, the attempt row and (when chaining after a
# success) the lease of the endpoint's next due row with its payload. Asynchronous commit:
# losing this commit in a database crash only means the attempt is made (and recorded) again.
# Run with psycopg directly (api/services/driver.py): the hot statement of the drain.
_RECORD_PG = """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true)),
upd AS (
  UPDATE delivery SET status = %(status)s,
         next_attempt_at = CAST(%(next_at)s AS timestamptz), attempt_count = %(count)s,
         lease_token = NULL, updated_at = CAST(%(now)s AS timestamptz)
   WHERE id = %(delivery_id)s AND lease_token = %(token)s AND status = 3
  RETURNING id),
ins AS (
  INSERT INTO message_attempt (id, msg_id, endpoint_id, delivery_id, app_id, url, response,
    response_status_code, response_duration_ms, status, trigger_type, next_attempt_at,
    created_at)
  SELECT %(attempt_id)s, %(msg_id)s, %(endpoint_id)s, upd.id, %(app_id)s, %(url)s,
    %(response)s, CAST(%(code)s AS smallint), CAST(%(duration)s AS bigint),
    CAST(%(attempt_status)s AS smallint), CAST(%(trigger)s AS smallint),
    CAST(%(next_at)s AS timestamptz), CAST(%(now)s AS timestamptz)
  FROM upd, cfg
  RETURNING id),
nxt AS (
  UPDATE delivery SET lease_token = replace(CAST(gen_random_uuid() AS text), '-', ''),
         next_attempt_at = CAST(%(until)s AS timestamptz),
         updated_at = CAST(%(now)s AS timestamptz)
   WHERE id = (SELECT id FROM delivery
                WHERE endpoint_id = %(endpoint_id)s AND status = 3
                  AND next_attempt_at <= CAST(%(now)s AS timestamptz)
                  AND CAST(%(chain)s AS boolean) AND EXISTS (SELECT 1 FROM upd)
                ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id, lease_token, msg_id, trigger_type, attempt_count)
SELECT (SELECT count(*) FROM ins) AS written, nxt.id, nxt.lease_token, nxt.msg_id,
       nxt.trigger_type, nxt.attempt_count, m.payload
  FROM (SELECT 1) AS one LEFT JOIN nxt ON true LEFT JOIN message m ON m.id = nxt.msg_id
"""


def load_job(delivery_id: str, token: str) -> Job | str:
    """Snapshot the job (one read), or a reason string (stale / disabled / payload_expired).

    A lease with less left than one attempt needs is renewed first (a task that waited long
    in the queue), so the dispatcher cannot hand the row to another worker mid-attempt.
    """
    now = utcnow()
    config = current_app.config
    row = db.session.execute(_LOAD, {"delivery_id": delivery_id, "token": token}).first()
    if row is None:
        db.session.rollback()
        return "stale"
    if row.disabled or row.payload is None:
        _fenced(
            delivery_id,
            token,
            status=MessageStatus.CANCELED,
            next_attempt_at=None,
            lease_token=None,
            updated_at=now,
        )
        db.session.commit()
        return "disabled" if row.disabled else "payload_expired"
    lease = float(config["LEASE_SECONDS"])
    needed = min(float(config["REQUEST_TIMEOUT"]) + THROTTLE_INLINE_WAIT + 30, lease / 2)
    if row.next_attempt_at is None or row.next_attempt_at - now < timedelta(seconds=needed):
        if not _fenced(delivery_id, token, next_attempt_at=now + timedelta(seconds=lease)):
            db.session.rollback()
            return "stale"
        db.session.commit()
    else:
        db.session.rollback()  # end the read; no transaction (or connection) held during POST
    return Job(
        delivery_id=delivery_id,
        lease_token=token,
        msg_id=row.msg_id,
        app_id=row.app_id,
        endpoint_id=row.endpoint_id,
        url=row.url,
        trigger_type=row.trigger_type,
        attempt_count=row.attempt_count,
        body=row.payload.encode(),
        keys=live_keys(row.secret, row.old_keys, now),
        headers=dict(row.headers or {}),
        throttle_rate=row.throttle_rate,
        first_failure_at=row.first_failure_at,
    )


def park(job: Job, seconds: float) -> bool:
    """Put the delivery back for later without counting an attempt (throttle / busy)."""
    ok = _fenced(
        job.delivery_id,
        job.lease_token,
        lease_token=None,
        next_attempt_at=utcnow() + timedelta(seconds=seconds),
        updated_at=utcnow(),
    )
    db.session.commit()
    return ok


def _next_state(job: Job, outcome: Outcome, now: datetime) -> tuple[int, datetime | None]:
    """(delivery status, next attempt time) after this attempt."""
    if outcome.ok:
        return MessageStatus.SUCCESS, None
    if job.trigger_type == TriggerType.MANUAL:
        return MessageStatus.FAIL, None
    delay = retry.next_delay(
        job.attempt_count + 1,
        current_app.config["RETRY_SCHEDULE"],
        status_code=outcome.status_code,
        timed_out=outcome.timed_out,
        retry_after=outcome.retry_after,
        now=now,
    )
    if delay is None:
        return MessageStatus.FAIL, None
    return MessageStatus.SENDING, now + timedelta(seconds=delay)


def _track_endpoint_health(job: Job, ok: bool, now: datetime) -> None:
    """Reset the failure clock on success; start it, or disable the endpoint, on failure.

    Decided from the snapshot, so the common cases (healthy and succeeding, or already
    failing within the window) cost no write.
    """
    ep = ENDPOINT.c
    if ok:
        if job.first_failure_at is not None:
            db.session.execute(
                update(ENDPOINT).where(ep.id == job.endpoint_id).values(first_failure_at=None)
            )
        return
    if job.first_failure_at is None:
        db.session.execute(
            update(ENDPOINT)
            .where(ep.id == job.endpoint_id, ep.first_failure_at.is_(None))
            .values(first_failure_at=now)
        )
        return
    cutoff = now - timedelta(seconds=current_app.config["ENDPOINT_DISABLE_AFTER"])
    if job.first_failure_at <= cutoff:
        result = db.session.execute(
            update(ENDPOINT)
            .where(ep.id == job.endpoint_id, ep.first_failure_at <= cutoff, ~ep.disabled)
            .values(disabled=True, updated_at=now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            logger.warning("endpoint.auto_disabled", extra={"endpoint_id": job.endpoint_id})


def record_outcome(job: Job, outcome: Outcome, now: datetime | None = None) -> str:
    """Write the attempt and the delivery's next state, fenced on the lease token."""
    return _record(job, outcome, now)[0]


def _record(
    job: Job, outcome: Outcome, now: datetime | None = None, chain: bool = False
) -> tuple[str, Job | None]:
    """record_outcome; with `chain`, a success also leases the endpoint's next due row."""
    moment = now or utcnow()
    status, next_at = _next_state(job, outcome, moment)
    attempt_status = MessageStatus.SUCCESS if outcome.ok else MessageStatus.FAIL
    chain = chain and outcome.ok
    claimed: Any = None
    if db.engine.dialect.name == "postgresql":
        lease = timedelta(seconds=current_app.config["LEASE_SECONDS"])
        (row,) = driver.execute(
            _RECORD_PG,
            {
                "status": int(status),
                "next_at": next_at,
                "count": job.attempt_count + 1,
                "now": moment,
                "delivery_id": job.delivery_id,
                "token": job.lease_token,
                "attempt_id": new_id("atmpt"),
                "msg_id": job.msg_id,
                "endpoint_id": job.endpoint_id,
                "app_id": job.app_id,
                "url": job.url,
                "response": outcome.response,
                "code": outcome.status_code,
                "duration": outcome.duration_ms,
                "attempt_status": int(attempt_status),
                "trigger": job.trigger_type,
                "chain": chain,
                "until": moment + lease,
            },
        )
        written, claimed = bool(row.written), (row if row.id is not None else None)
    else:
        written = _fenced(
            job.delivery_id,
            job.lease_token,
            status=status,
            next_attempt_at=next_at,
            attempt_count=job.attempt_count + 1,
            lease_token=None,
            updated_at=moment,
        )
        if written:
            db.session.execute(
                insert(MessageAttempt.__table__).values(
                    id=new_id("atmpt"),
                    msg_id=job.msg_id,
                    endpoint_id=job.endpoint_id,
                    delivery_id=job.delivery_id,
                    app_id=job.app_id,
                    url=job.url,
                    response=outcome.response,
                    response_status_code=outcome.status_code,
                    response_duration_ms=outcome.duration_ms,
                    status=attempt_status,
                    trigger_type=job.trigger_type,
                    next_attempt_at=next_at,
                    created_at=moment,
                )
            )
            claimed = claim_next_for_endpoint(job.endpoint_id, commit=False) if chain else None
    if not written:
        db.session.rollback()
        logger.info("delivery.stale_result", extra={"delivery_id": job.delivery_id})
        return "stale", None
    _track_endpoint_health(job, outcome.ok, moment)
    following = None
    if claimed is not None and claimed.payload is None:  # purged meanwhile: finish it here
        _fenced(
            claimed.id,
            claimed.lease_token,
            status=MessageStatus.CANCELED,
            next_attempt_at=None,
            lease_token=None,
            updated_at=moment,
        )
    elif claimed is not None:
        # the endpoint's settings are reused from this job's snapshot (at most CHAIN_SECONDS
        # old; svix-server caches endpoints for 30 s): no second read per row
        following = replace(
            job,
            delivery_id=claimed.id,
            lease_token=claimed.lease_token,
            msg_id=claimed.msg_id,
            trigger_type=claimed.trigger_type,
            attempt_count=claimed.attempt_count,
            body=claimed.payload.encode(),
            first_failure_at=None,
        )
    db.session.commit()
    label = {0: "success", 2: "failed"}.get(int(status), "retry")
    logger.info(
        "delivery.attempted",
        extra={
            "delivery_id": job.delivery_id,
            "msg_id": job.msg_id,
            "endpoint_id": job.endpoint_id,
            "status_code": outcome.status_code,
            "result": label,
            "duration_ms": outcome.duration_ms,
        },
    )
    return label, following


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
    return post(
        job.url, job.body, headers, float(config["REQUEST_TIMEOUT"]), config["WHITELIST_SUBNETS"]
    )


def deliver(delivery_id: str, lease_token: str) -> str:
    """Attempt a leased delivery; after a success, go on with the endpoint's next due rows.

    Continuing on the same endpoint (bounded by CHAIN_MAX / CHAIN_SECONDS) drains a backlog
    without a dispatcher round trip per row, holding one concurrency slot for the whole run.
    Returns what happened to the first delivery.
    """
    job = load_job(delivery_id, lease_token)
    if isinstance(job, str):
        return job
    config = current_app.config
    client = get_redis()
    holder = f"{delivery_id}:{lease_token}"
    hold = 2 * float(config["REQUEST_TIMEOUT"]) + THROTTLE_INLINE_WAIT + CHAIN_SECONDS + 10
    if not throttle.acquire_slot(client, job.endpoint_id, holder, per_endpoint_limit(), hold):
        # the dispatcher hands out at most the cap per endpoint: this is a short race
        park(job, random.uniform(0.5, 1.5))
        return "busy"
    started, chained = time.monotonic(), 0
    try:
        label, following = _attempt_job(job, chain=CHAIN_MAX > 0)
        while following is not None:
            chained += 1
            more = chained < CHAIN_MAX and time.monotonic() - started < CHAIN_SECONDS
            _, following = _attempt_job(following, chain=more)
    finally:
        throttle.release_slot(client, job.endpoint_id, holder)
    if chained:
        logger.info("delivery.chained", extra={"delivery_id": delivery_id, "count": chained})
    return label


def _attempt_job(job: Job, chain: bool) -> tuple[str, Job | None]:
    """Throttle, POST and the fenced record (the caller holds the concurrency slot)."""
    if job.throttle_rate:
        wait = throttle.reserve_slot(
            get_redis(),
            job.endpoint_id,
            job.delivery_id,
            float(job.throttle_rate),
            THROTTLE_INLINE_WAIT,
        )
        if wait > THROTTLE_INLINE_WAIT:
            park(job, wait)
            return "throttled", None
        if wait > 0:
            time.sleep(wait)
    return _record(job, send(job), chain=chain)
