"""Sending one job: its throttle slot, the signed POST (outside any transaction, no database).

Runs in a pump's sender threads (pump.py); what it returns is recorded by record.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import redis

from api import metrics
from api.config import herald_version
from api.services.delivery import throttle
from api.services.delivery.http_client import Network, Outcome, post
from api.services.delivery.job import Job
from api.services.delivery.signing import webhook_headers

USER_AGENT = f"Herald-Webhooks/{herald_version()}"

THROTTLE_INLINE_WAIT = 1.0  # a throttle wait up to this long is slept in the sender thread


@dataclass(frozen=True)
class Settings:
    """What sending needs from the app's config (sender threads have no app context)."""

    timeout: float
    whitelist: Sequence[Network]


@dataclass(frozen=True)
class Result:
    """A job and its outcome; no outcome means parked for `park_seconds` (throttled)."""

    job: Job
    outcome: Outcome | None
    park_seconds: float = 0.0


def send(job: Job, settings: Settings) -> Outcome:
    """POST the exact stored body with fresh signatures (timestamp taken now); the outcome
    carries the headers sent."""
    timestamp = int(time.time())
    headers = {
        **job.headers,  # custom headers first: they can never replace ours
        "content-type": job.content_type,
        "user-agent": USER_AGENT,
        **webhook_headers(job.msg_id, timestamp, job.body, job.keys),
    }
    outcome = post(job.url, job.body, headers, settings.timeout, settings.whitelist)
    return replace(outcome, sent_headers=tuple(headers.items()))


def attempt(job: Job, settings: Settings, client: redis.Redis) -> Result:
    """Take the endpoint's throttle slot (a short wait is slept, a long one parks the job),
    then send."""
    if job.throttle_rate:
        wait = throttle.reserve_slot(
            client, job.endpoint_id, job.delivery_id, float(job.throttle_rate), THROTTLE_INLINE_WAIT
        )
        if wait > 0:
            metrics.count_throttle_wait(parked=wait > THROTTLE_INLINE_WAIT)
        if wait > THROTTLE_INLINE_WAIT:
            return Result(job, None, wait)
        if wait > 0:
            time.sleep(wait)
    return Result(job, send(job, settings))
