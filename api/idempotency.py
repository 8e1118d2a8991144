"""Idempotent POSTs: the first 2xx response to an `idempotency-key` is replayed for 12 hours.

Key = sha256(org + token + idempotency-key + path?query): the token is authenticated first, so
a deleted token, or another org's token reusing the key, never sees a stored response (the view
answers or runs the request as if there were none). A concurrent duplicate waits (up to 5 s) for
the first request to finish. Non-2xx responses are not kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from flask import Flask, Response, g, request

from api.auth import request_principal
from api.errors import ApiError
from api.extensions import get_redis

logger = logging.getLogger(__name__)

TTL_SECONDS = 12 * 3600
LOCK_SECONDS = 30
WAIT_SECONDS = 5.0
IN_PROGRESS = b"in-progress"


def _key() -> str | None:
    header = request.headers.get("idempotency-key")
    if request.method != "POST" or not header:
        return None
    principal = request_principal()
    if principal is None:  # not authenticated: the view answers 401, nothing is replayed
        return None
    raw = "\x00".join((principal.org_id, principal.token_id, header, request.full_path))
    return "herald:idem:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _replay(stored: bytes | str) -> Response:
    data = json.loads(stored)
    response = Response(data["body"], status=data["status"], mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def register_idempotency(app: Flask) -> None:
    """Install the before/after request hooks."""

    @app.before_request
    def _claim() -> Response | None:
        key = _key()
        if key is None:
            return None
        redis = get_redis()
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if redis.set(key, IN_PROGRESS, nx=True, ex=LOCK_SECONDS):
                g.idempotency_key = key
                return None
            stored = redis.get(key)
            if stored is not None and stored != IN_PROGRESS:
                return _replay(stored)
            if time.monotonic() >= deadline:
                raise ApiError(
                    409, "conflict", "A request with this idempotency key is still in progress."
                )
            time.sleep(0.1)

    @app.after_request
    def _store(response: Response) -> Response:
        key = g.pop("idempotency_key", None)
        if key is None:
            return response
        redis = get_redis()
        if 200 <= response.status_code < 300:
            body = response.get_data(as_text=True)
            redis.set(
                key, json.dumps({"status": response.status_code, "body": body}), ex=TTL_SECONDS
            )
        else:
            redis.delete(key)
        return response

    @app.teardown_request
    def _release(exc: BaseException | None) -> None:
        key = g.pop("idempotency_key", None)  # still set only if the request crashed
        if key is not None:
            get_redis().delete(key)
