"""Deliver one leased delivery: load its job, throttle, POST (outside any transaction), record.

Entry point: `deliver(delivery_id, lease_token)`, run by the `herald.deliver` task. The job
and its lease: load.py; recording the outcome: record.py.
"""

from __future__ import annotations

import logging
import random
import time
import tomllib

from flask import current_app

from api.config import ROOT
from api.extensions import get_redis
from api.services.delivery import leases, load, record, throttle
from api.services.delivery.claim import per_endpoint_limit
from api.services.delivery.http_client import Outcome, post
from api.services.delivery.signing import webhook_headers

logger = logging.getLogger(__name__)


def _version() -> str:
    """Herald's version from pyproject.toml (no installed distribution needed)."""
    try:
        with open(ROOT / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0"


USER_AGENT = f"Herald-Webhooks/{_version()}"

CHAIN_MAX = 100  # deliveries one task may go on with after a success (same endpoint)
CHAIN_SECONDS = 10.0


def send(job: load.Job) -> Outcome:
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
    job = load.load_job(delivery_id, lease_token)
    if isinstance(job, str):
        return job
    config = current_app.config
    client = get_redis()
    holder = f"{delivery_id}:{lease_token}"
    hold = 2 * float(config["REQUEST_TIMEOUT"]) + load.THROTTLE_INLINE_WAIT + CHAIN_SECONDS + 10
    if not throttle.acquire_slot(client, job.endpoint_id, holder, per_endpoint_limit(), hold):
        # the dispatcher hands out at most the cap per endpoint: this is a short race
        load.park(job, random.uniform(0.5, 1.5))
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


def _attempt_job(job: load.Job, chain: bool) -> tuple[str, load.Job | None]:
    """Throttle, POST and the fenced record (the caller holds the concurrency slot), the
    lease renewed meanwhile."""
    with leases.holding(job.delivery_id, job.lease_token):
        return _throttled_attempt(job, chain)


def _throttled_attempt(job: load.Job, chain: bool) -> tuple[str, load.Job | None]:
    if job.throttle_rate:
        wait = throttle.reserve_slot(
            get_redis(),
            job.endpoint_id,
            job.delivery_id,
            float(job.throttle_rate),
            load.THROTTLE_INLINE_WAIT,
        )
        if wait > load.THROTTLE_INLINE_WAIT:
            load.park(job, wait)
            return "throttled", None
        if wait > 0:
            time.sleep(wait)
    return record.record_attempt(job, send(job), chain=chain)
