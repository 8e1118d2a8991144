"""Recording a batch of results: the attempt rows (with the headers sent, sensitive values
withheld, and received), each delivery's next state (the retry schedule: its event type's or
the default) or its park, the endpoints' failure clocks — fenced on the lease tokens, in one
statement on PostgreSQL however many results there are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert, update

from api import metrics
from api.extensions import db
from api.ids import new_id
from api.models import MessageAttempt, MessageStatus, TriggerType
from api.models.common import utcnow
from api.services import driver, operational_events
from api.services.delivery import retry
from api.services.delivery.http_client import Outcome
from api.services.delivery.job import ENDPOINT, Job, fenced_update
from api.services.delivery.send import Result
from api.services.endpoints import SENSITIVE_HEADERS

logger = logging.getLogger(__name__)

# PostgreSQL, one round trip for the batch: the rows still leased to us are locked in id
# order (as a delete takes them: no deadlock), updated, and an attempt row written for each
# that was attempted (not for a park). Asynchronous commit: losing this commit in a database
# crash only means the attempt is made (and recorded) again.
_RECORD_PG = """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
r AS (
  SELECT * FROM unnest(
    CAST(%(ids)s AS text[]), CAST(%(tokens)s AS text[]), CAST(%(statuses)s AS smallint[]),
    CAST(%(next_ats)s AS timestamptz[]), CAST(%(counts)s AS integer[]),
    CAST(%(attempt_ids)s AS text[]), CAST(%(urls)s AS text[]), CAST(%(responses)s AS text[]),
    CAST(%(codes)s AS smallint[]), CAST(%(durations)s AS bigint[]),
    CAST(%(attempt_statuses)s AS smallint[]), CAST(%(sent_headers)s AS text[]),
    CAST(%(response_headers)s AS text[]))
    AS r(id, token, status, next_at, cnt, attempt_id, url, response, code, duration,
         attempt_status, sent_headers, response_headers)),
locked AS (
  SELECT d.id FROM delivery d JOIN r ON r.id = d.id AND r.token = d.lease_token
   WHERE d.status = 3 ORDER BY d.id FOR UPDATE OF d),
upd AS (
  UPDATE delivery d SET status = r.status, next_attempt_at = r.next_at, attempt_count = r.cnt,
         lease_token = NULL, updated_at = CAST(%(now)s AS timestamptz)
    FROM r, locked, cfg WHERE d.id = locked.id AND r.id = locked.id AND cfg.v IS NOT NULL
  RETURNING d.id, d.msg_id, d.endpoint_id, d.app_id, d.trigger_type),
ins AS (
  INSERT INTO message_attempt (id, msg_id, endpoint_id, delivery_id, app_id, url, response,
    response_status_code, response_duration_ms, status, trigger_type, next_attempt_at,
    created_at, sent_headers, response_headers)
  SELECT r.attempt_id, upd.msg_id, upd.endpoint_id, upd.id, upd.app_id, r.url, r.response,
         r.code, r.duration, r.attempt_status, upd.trigger_type, r.next_at,
         CAST(%(now)s AS timestamptz), CAST(r.sent_headers AS jsonb),
         CAST(r.response_headers AS jsonb)
    FROM upd JOIN r ON r.id = upd.id WHERE r.attempt_id IS NOT NULL
  RETURNING delivery_id)
SELECT upd.id FROM upd
"""


@dataclass(frozen=True)
class _Row:
    """One result as written: the delivery's next state and (when attempted) its attempt."""

    result: Result
    status: int
    next_at: datetime | None
    count: int
    attempt_status: int | None  # None: a park, no attempt
    attempt_id: str | None = None  # the attempt row's id (None: a park)


def next_state(job: Job, outcome: Outcome, now: datetime) -> tuple[int, datetime | None]:
    """(delivery status, next attempt time) after this attempt; retries follow the event
    type's schedule when it has one, else HERALD_RETRY_SCHEDULE."""
    if outcome.ok:
        return MessageStatus.SUCCESS, None
    if job.trigger_type == TriggerType.MANUAL:
        return MessageStatus.FAIL, None
    schedule: Sequence[float] = current_app.config["RETRY_SCHEDULE"]
    if job.retry_schedule is not None:  # the event type's own (seconds, may have a fraction)
        schedule = job.retry_schedule
    delay = retry.next_delay(
        job.attempt_count + 1,
        schedule,
        status_code=outcome.status_code,
        timed_out=outcome.timed_out,
        retry_after=outcome.retry_after,
        now=now,
    )
    if delay is None:
        return MessageStatus.FAIL, None
    return MessageStatus.SENDING, now + timedelta(seconds=delay)


def sent_headers(outcome: Outcome) -> dict[str, str | None] | None:
    """The headers sent as stored: a sensitive one's value withheld (null), as GET .../headers
    of the endpoint withholds it."""
    if outcome.sent_headers is None:
        return None
    return {k: None if k.lower() in SENSITIVE_HEADERS else v for k, v in outcome.sent_headers}


def response_headers(outcome: Outcome) -> list[list[str]] | None:
    """The response's headers as stored: [name, value] pairs."""
    if outcome.response_headers is None:
        return None
    return [[name, value] for name, value in outcome.response_headers]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _row(result: Result, now: datetime) -> _Row:
    job, outcome = result.job, result.outcome
    if outcome is None:
        park = now + timedelta(seconds=result.park_seconds)
        return _Row(result, MessageStatus.SENDING, park, job.attempt_count, None)
    status, next_at = next_state(job, outcome, now)
    attempt_status = MessageStatus.SUCCESS if outcome.ok else MessageStatus.FAIL
    attempt_id = new_id("atmpt")
    return _Row(result, status, next_at, job.attempt_count + 1, attempt_status, attempt_id)


def _write_postgresql(rows: Sequence[_Row], now: datetime) -> set[str]:
    def column(get: Any) -> list[Any]:
        return [get(row) for row in rows]

    def attempted(get: Any) -> list[Any]:
        return [get(row.result.outcome) if row.result.outcome else None for row in rows]

    params = {
        "ids": column(lambda r: r.result.job.delivery_id),
        "tokens": column(lambda r: r.result.job.lease_token),
        "statuses": column(lambda r: int(r.status)),
        "next_ats": column(lambda r: r.next_at),
        "counts": column(lambda r: r.count),
        "attempt_ids": column(lambda r: r.attempt_id),
        "urls": column(lambda r: r.result.job.url),
        "responses": attempted(lambda o: o.response),
        "codes": attempted(lambda o: o.status_code),
        "durations": attempted(lambda o: o.duration_ms),
        "attempt_statuses": column(
            lambda r: int(r.attempt_status) if r.attempt_status is not None else None
        ),
        "sent_headers": attempted(lambda o: _json(sent_headers(o))),
        "response_headers": attempted(lambda o: _json(response_headers(o))),
        "now": now,
    }
    return {row.id for row in driver.execute(_RECORD_PG, params)}


def _write_generic(rows: Sequence[_Row], now: datetime) -> set[str]:
    written = set()
    for row in sorted(rows, key=lambda r: r.result.job.delivery_id):
        job, outcome = row.result.job, row.result.outcome
        values: dict[str, Any] = {"status": row.status, "next_attempt_at": row.next_at}
        values.update(attempt_count=row.count, lease_token=None, updated_at=now)
        if not fenced_update(job.delivery_id, job.lease_token, **values):
            continue
        written.add(job.delivery_id)
        if outcome is not None:
            db.session.execute(
                insert(MessageAttempt.__table__).values(
                    id=row.attempt_id,
                    msg_id=job.msg_id,
                    endpoint_id=job.endpoint_id,
                    delivery_id=job.delivery_id,
                    app_id=job.app_id,
                    url=job.url,
                    response=outcome.response,
                    response_status_code=outcome.status_code,
                    response_duration_ms=outcome.duration_ms,
                    status=row.attempt_status,
                    trigger_type=job.trigger_type,
                    next_attempt_at=row.next_at,
                    created_at=now,
                    sent_headers=sent_headers(outcome),
                    response_headers=response_headers(outcome),
                )
            )
    return written


def _exhausted(row: _Row) -> bool:
    """An attempt that failed and left its delivery no retry (FAIL)."""
    return row.attempt_status == MessageStatus.FAIL and row.status == MessageStatus.FAIL


def _track_endpoint_health(
    rows: Sequence[_Row], now: datetime
) -> list[operational_events.DisabledEndpoint]:
    """Per endpoint, its latest attempt in the batch: a success resets the failure clock; a
    failure starts it; Svix's rule: when a message exhausts its retries and the clock has run
    for ENDPOINT_DISABLE_AFTER, the endpoint is disabled. Returns those disabled.

    Decided from the jobs' snapshots, so the common cases (healthy and succeeding, or
    already failing within the window) cost no write.
    """
    latest: dict[str, tuple[Job, bool]] = {}
    exhausted: set[str] = set()
    for row in rows:
        if row.result.outcome is not None:
            latest[row.result.job.endpoint_id] = (row.result.job, row.result.outcome.ok)
        if _exhausted(row):
            exhausted.add(row.result.job.endpoint_id)
    disabled_now = []
    ep = ENDPOINT.c
    cutoff = now - timedelta(seconds=current_app.config["ENDPOINT_DISABLE_AFTER"])
    for endpoint_id, (job, ok) in sorted(latest.items()):
        if ok and job.first_failure_at is not None:
            db.session.execute(
                update(ENDPOINT).where(ep.id == endpoint_id).values(first_failure_at=None)
            )
        elif not ok and job.first_failure_at is None:
            db.session.execute(
                update(ENDPOINT)
                .where(ep.id == endpoint_id, ep.first_failure_at.is_(None))
                .values(first_failure_at=now)
            )
        elif not ok and endpoint_id in exhausted and job.first_failure_at <= cutoff:  # type: ignore[operator]
            disabled = db.session.execute(
                update(ENDPOINT)
                .where(ep.id == endpoint_id, ep.first_failure_at <= cutoff, ~ep.disabled)
                .values(disabled=True, updated_at=now)
            )
            if disabled.rowcount:  # type: ignore[attr-defined]
                logger.warning("endpoint.auto_disabled", extra={"endpoint_id": endpoint_id})
                metrics.count_endpoint_disabled()
                disabled_now.append(
                    operational_events.DisabledEndpoint(
                        job.app_id, endpoint_id, job.first_failure_at
                    )
                )
    return disabled_now


def _crossed(row: _Row) -> list[str]:
    """The operational-webhook thresholds a recorded attempt crossed: the fourth failure
    (failing), the last (exhausted), a success after failing was sent (recovered)."""
    outcome = row.result.outcome
    if outcome is None or row.attempt_id is None:
        return []
    kinds = []
    if not outcome.ok and row.count == operational_events.FAILING_AFTER:
        kinds.append(operational_events.ATTEMPT_FAILING)
    if _exhausted(row):
        kinds.append(operational_events.ATTEMPT_EXHAUSTED)
    if outcome.ok and row.result.job.attempt_count >= operational_events.FAILING_AFTER:
        kinds.append(operational_events.ATTEMPT_RECOVERED)
    return kinds


def _attempt_events(rows: Sequence[_Row], now: datetime) -> list[operational_events.AttemptEvent]:
    """One event per threshold each recorded attempt crossed (_crossed)."""
    events = []
    for row in rows:
        kinds, job, outcome = _crossed(row), row.result.job, row.result.outcome
        if not kinds or outcome is None or row.attempt_id is None:  # (None: no kinds)
            continue
        for kind in kinds:
            events.append(
                operational_events.AttemptEvent(
                    kind,
                    job.app_id,
                    job.endpoint_id,
                    job.msg_id,
                    row.attempt_id,
                    outcome.status_code,
                    now,
                )
            )
    return events


_LABELS = {0: "success", 2: "failed"}


def _record(results: Sequence[Result], now: datetime) -> list[str]:
    rows = [_row(result, now) for result in results]
    write = _write_postgresql if db.engine.dialect.name == "postgresql" else _write_generic
    if any(_crossed(row) for row in rows):  # (an exhausting one is among them: a disable)
        driver.begin()  # operational events may follow: they commit with the results
    written = write(rows, now)
    done = [row for row in rows if row.result.job.delivery_id in written]
    disabled = _track_endpoint_health(done, now)
    operational_events.emit_delivery_events(_attempt_events(done, now), disabled)  # never raises
    driver.commit()
    labels = []
    for row in rows:
        job, outcome = row.result.job, row.result.outcome
        if job.delivery_id not in written:
            logger.info("delivery.stale_result", extra={"delivery_id": job.delivery_id})
            labels.append("stale")
        elif outcome is None:
            labels.append("throttled")
        else:
            label = _LABELS.get(int(row.status), "retry")
            labels.append(label)
            metrics.count_attempt(outcome, label)
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
    return labels


def _stored_safely(result: Result, error: Exception) -> Result:
    """The result without what the database refused: its status code and a note instead of
    the response, without its Retry-After."""
    outcome = result.outcome
    if outcome is None:
        return result
    note = f"(the response could not be stored: {type(error).__name__})"
    safe = Outcome(outcome.status_code, note, outcome.duration_ms, timed_out=outcome.timed_out)
    return Result(result.job, safe)


def record_results(results: Sequence[Result], now: datetime | None = None) -> list[str]:
    """Record the batch; returns a label per result (success / retry / failed / throttled /
    stale). When the database refuses the batch (or anything else raises while recording
    it), each result is recorded alone, and one that still fails is recorded without its
    response: every attempt is logged and the retry schedule goes on, never a silent re-send
    after the lease."""
    if not results:
        return []
    moment = now or utcnow()
    try:
        return _record(results, moment)
    except Exception as exc:
        db.session.rollback()
        if len(results) == 1:
            logger.exception(
                "delivery.record_failed", extra={"delivery_id": results[0].job.delivery_id}
            )
            return _record([_stored_safely(results[0], exc)], moment)
        logger.exception("delivery.record_batch_failed", extra={"results": len(results)})
    labels = []
    for result in results:
        labels += record_results([result], moment)
    return labels
