"""The ingest benchmark's baseline: a bare Flask route shaped like message create, no I/O."""

from __future__ import annotations

import time
import uuid

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.post("/api/v1/app/<app_id>/msg")
def create_message(app_id: str) -> ResponseReturnValue:
    """Parse the JSON body and answer 202 with a MessageOut-shaped body (nothing is stored)."""
    body = request.get_json()
    out = {
        "id": "msg_" + uuid.uuid4().hex[:27],
        "eventType": body["eventType"],
        "payload": {},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return jsonify(out), 202


@app.get("/api/v1/health/ping")
def ping() -> ResponseReturnValue:
    """Readiness probe for the benchmark driver."""
    return "", 204
