"""Recording an attempt: the attempt row, the delivery's next state (retry schedule), the
endpoint's failure clock, all fenced on the lease token; optionally leasing the endpoint's
next due row in the same statement (a worker going on with its run).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert, update

from api.extensions import db
from api.ids import new_id
from api.models import MessageAttempt, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services import driver
from api.services.delivery import retry
from api.services.delivery.claim import claim_next_for_endpoint
from api.services.delivery.http_client import Outcome
from api.services.delivery.leases import lease_deadline
from api.services.delivery.load import ENDPOINT, Job, fenced_update

logger = logging.getLogger(__name__)

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


def record_attempt(job: Job, outcome: Outcome, chain: bool = False) -> tuple[str, Job | None]:
    """`record`, and when the database refuses the outcome (or anything else raises while
    recording it), record its status code with a note instead of the response and without
    its Retry-After: the attempt is logged and the retry schedule goes on, never a silent
    re-send after the lease."""
    try:
        return record(job, outcome, chain=chain)
    except Exception as exc:
        db.session.rollback()
        logger.exception("delivery.record_failed", extra={"delivery_id": job.delivery_id})
        note = f"(the response could not be stored: {type(exc).__name__})"
        safe = Outcome(outcome.status_code, note, outcome.duration_ms, timed_out=outcome.timed_out)
        return record(job, safe)


def record_outcome(job: Job, outcome: Outcome, now: datetime | None = None) -> str:
    """Write the attempt and the delivery's next state, fenced on the lease token."""
    return record(job, outcome, now)[0]


def record(
    job: Job, outcome: Outcome, now: datetime | None = None, chain: bool = False
) -> tuple[str, Job | None]:
    """record_outcome; with `chain`, a success also leases the endpoint's next due row."""
    moment = now or utcnow()
    status, next_at = _next_state(job, outcome, moment)
    attempt_status = MessageStatus.SUCCESS if outcome.ok else MessageStatus.FAIL
    chain = chain and outcome.ok
    claimed: Any = None
    if db.engine.dialect.name == "postgresql":
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
                "until": lease_deadline(moment),
            },
        )
        written, claimed = bool(row.written), (row if row.id is not None else None)
    else:
        written = fenced_update(
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
        fenced_update(
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
