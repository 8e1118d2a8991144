"""Prometheus metrics: GET /metrics, served as HERALD_METRICS says (api/metrics.py).

A plain Flask Blueprint, kept out of the OpenAPI document. `off` (the default) and
`bind:<host:port>` (served by the gunicorn master on its own address instead): 404 here.
`token:<bearer>`: 200 with `Authorization: Bearer <that secret>` (not an org's API token,
compared in constant time), else 401.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from api import metrics
from api.config import herald_version
from api.errors import ApiError

blp = Blueprint("metrics", __name__)


@blp.route("/metrics", methods=["GET"])
def scrape() -> Response:
    """Every process's samples and the scrape-time gauges, in the Prometheus text format."""
    config = current_app.config
    if config["METRICS"] != "token":
        raise NotFound()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = str(config["METRICS_TOKEN"]).encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(401, "authentication_failed", "metrics need the HERALD_METRICS bearer token")
    body, content_type = metrics.render(config, herald_version())
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
