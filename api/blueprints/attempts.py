"""Message attempts (Svix v1): the attempt log, per-destination status, resend, recover, replay,
stats."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.pagination import Page
from api.services import attempts, destinations, recovery
from serializers.attempts import (
    AppAttemptStatsOut,
    AppAttemptStatsQuery,
    AttemptByMsgQuery,
    AttemptCountQuery,
    AttemptGetQuery,
    AttemptListQuery,
    CountOut,
    DestinationListQuery,
    EndpointMessageOut,
    EndpointStats,
    ListResponseEndpointMessageOut,
    ListResponseMessageAttemptOut,
    ListResponseMessageEndpointOut,
    MessageAttemptHeadersOut,
    MessageAttemptOut,
    MessageEndpointOut,
    MessageFilterQuery,
    RecoverIn,
    RecoverOut,
    ReplayIn,
    ReplayOut,
    StatsQuery,
)

blp = Blueprint("attempts", __name__, url_prefix="/api/v1", description="Message attempts")

# Output depends on `with_content` / `with_msg` / `expanded_statuses`, so views dump with a
# schema built for the request and return a Response (flask-smorest passes it through; the
# decorators document the shape).
_MESSAGES = {
    (content, expanded): EndpointMessageOut(
        with_content=content, expanded_statuses=expanded, many=True
    )
    for content in (True, False)
    for expanded in (True, False)
}
_ATTEMPT = {expanded: MessageAttemptOut(expanded_statuses=expanded) for expanded in (True, False)}
_DESTINATIONS = MessageEndpointOut(many=True)
_QUERY_ONLY = ("with_content", "with_msg", "expanded_statuses")


def _page(page: Page, data: list[dict[str, Any]]) -> Response:
    return jsonify(
        {
            "data": data,
            "iterator": page.iterator,
            "prevIterator": page.prev_iterator,
            "done": page.done,
        }
    )


def _attempt_page(page: Page, query: dict[str, Any]) -> Response:
    messages = attempts.messages_by_id(a.msg_id for a in page.data) if query["with_msg"] else None
    schema = MessageAttemptOut(
        with_content=query["with_content"],
        messages=messages,
        expanded_statuses=query["expanded_statuses"],
        many=True,
    )
    return _page(page, schema.dump(page.data))


def _filters(query: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in query.items() if k not in _QUERY_ONLY}


@blp.route("/app/<app_id>/attempt/msg/<msg_id>", methods=["GET"])
@require_auth
@blp.arguments(AttemptByMsgQuery, location="query")
@blp.response(200, ListResponseMessageAttemptOut)
def list_attempts_by_msg(query: dict[str, Any], app_id: str, msg_id: str) -> ResponseReturnValue:
    """A message's attempts, newest first (filter by endpoint_id, status, time, ...)."""
    org_id = current_principal().org_id
    page = attempts.list_attempts_by_msg(org_id, app_id, msg_id, **_filters(query))
    return _attempt_page(page, {**query, "with_msg": False})


@blp.route("/app/<app_id>/attempt/endpoint/<endpoint_id>", methods=["GET"])
@require_auth
@blp.arguments(AttemptListQuery, location="query")
@blp.response(200, ListResponseMessageAttemptOut)
def list_attempts_by_endpoint(
    query: dict[str, Any], app_id: str, endpoint_id: str
) -> ResponseReturnValue:
    """An endpoint's attempts, newest first; `with_msg=true` embeds each message (no payload)."""
    org_id = current_principal().org_id
    page = attempts.list_attempts_by_endpoint(org_id, app_id, endpoint_id, **_filters(query))
    return _attempt_page(page, query)


@blp.route("/app/<app_id>/attempt/endpoint/<endpoint_id>/count", methods=["GET"])
@require_auth
@blp.arguments(AttemptCountQuery, location="query")
@blp.response(200, CountOut)
def count_attempts_by_endpoint(
    query: dict[str, Any], app_id: str, endpoint_id: str
) -> ResponseReturnValue:
    """How many attempts list-by-endpoint would give for these filters (at most 10,000)."""
    count, approximated = attempts.count_attempts_by_endpoint(
        current_principal().org_id, app_id, endpoint_id, **query
    )
    return {"count": count, "approximated": approximated}


@blp.route("/app/<app_id>/msg/<msg_id>/attempt/<attempt_id>", methods=["GET"])
@require_auth
@blp.arguments(AttemptGetQuery, location="query")
@blp.response(200, MessageAttemptOut)
def get_attempt(
    query: dict[str, Any], app_id: str, msg_id: str, attempt_id: str
) -> ResponseReturnValue:
    """One attempt of a message."""
    attempt = attempts.get_attempt(current_principal().org_id, app_id, msg_id, attempt_id)
    return jsonify(_ATTEMPT[query["expanded_statuses"]].dump(attempt))


@blp.route("/app/<app_id>/msg/<msg_id>/attempt/<attempt_id>/headers", methods=["GET"])
@require_auth
@blp.response(200, MessageAttemptHeadersOut)
def get_attempt_headers(app_id: str, msg_id: str, attempt_id: str) -> ResponseReturnValue:
    """The headers the attempt sent (sensitive values withheld) and those of its response."""
    return attempts.get_attempt(current_principal().org_id, app_id, msg_id, attempt_id)


@blp.route("/app/<app_id>/msg/<msg_id>/attempt/<attempt_id>/content", methods=["DELETE"])
@require_auth
@blp.response(204)
def expunge_attempt_content(app_id: str, msg_id: str, attempt_id: str) -> ResponseReturnValue:
    """Delete the attempt's response body (it then reads "EXPUNGED")."""
    attempts.expunge_attempt_content(current_principal().org_id, app_id, msg_id, attempt_id)
    return "", 204


@blp.route("/app/<app_id>/msg/<msg_id>/endpoint/<endpoint_id>/resend", methods=["POST"])
@require_auth
@blp.response(202)
def resend(app_id: str, msg_id: str, endpoint_id: str) -> ResponseReturnValue:
    """Send the message to the endpoint again (a manual attempt); the SDK needs a `{}` body."""
    attempts.resend_message(current_principal().org_id, app_id, msg_id, endpoint_id)
    return {}


@blp.route("/app/<app_id>/endpoint/<endpoint_id>/msg", methods=["GET"])
@require_auth
@blp.arguments(MessageFilterQuery, location="query")
@blp.response(200, ListResponseEndpointMessageOut)
def list_attempted_messages(
    query: dict[str, Any], app_id: str, endpoint_id: str
) -> ResponseReturnValue:
    """Messages sent to an endpoint, newest first, with their status there."""
    org_id = current_principal().org_id
    page = destinations.list_attempted_messages(org_id, app_id, endpoint_id, **_filters(query))
    schema = _MESSAGES[(query["with_content"], query["expanded_statuses"])]
    return _page(page, schema.dump(page.data))


@blp.route("/app/<app_id>/msg/<msg_id>/endpoint", methods=["GET"])
@require_auth
@blp.arguments(DestinationListQuery, location="query")
@blp.response(200, ListResponseMessageEndpointOut)
def list_attempted_destinations(
    query: dict[str, Any], app_id: str, msg_id: str
) -> ResponseReturnValue:
    """Endpoints a message was sent to, ascending by id, with its status at each."""
    page = destinations.list_attempted_destinations(
        current_principal().org_id,
        app_id,
        msg_id,
        limit=query["limit"],
        iterator=query["iterator"],
    )
    return _page(page, _DESTINATIONS.dump(page.data))


@blp.route("/app/<app_id>/endpoint/<endpoint_id>/recover", methods=["POST"])
@require_auth
@blp.arguments(RecoverIn)
@blp.response(202, RecoverOut)
def recover(data: dict[str, Any], app_id: str, endpoint_id: str) -> ResponseReturnValue:
    """Resend, in the background, what failed to reach the endpoint since `since`."""
    return recovery.start_recovery(
        current_principal().org_id, app_id, endpoint_id, data["since"], data["until"]
    )


@blp.route("/app/<app_id>/endpoint/<endpoint_id>/replay-missing", methods=["POST"])
@require_auth
@blp.arguments(ReplayIn)
@blp.response(202, ReplayOut)
def replay_missing(data: dict[str, Any], app_id: str, endpoint_id: str) -> ResponseReturnValue:
    """Send the endpoint, in the background, every message since `since` it never got."""
    return recovery.start_replay(
        current_principal().org_id, app_id, endpoint_id, data["since"], data["until"]
    )


@blp.route("/app/<app_id>/stats/attempts", methods=["GET"])
@require_auth
@blp.arguments(AppAttemptStatsQuery, location="query")
@blp.response(200, AppAttemptStatsOut)
def get_app_attempt_stats(query: dict[str, Any], app_id: str) -> ResponseReturnValue:
    """The app's attempts in the window, succeeded / failed / canceled, per event type."""
    return attempts.app_attempt_stats(
        current_principal().org_id,
        app_id,
        query["since"],
        query["until"],
        query.get("event_types"),
    )


@blp.route("/app/<app_id>/endpoint/<endpoint_id>/stats", methods=["GET"])
@require_auth
@blp.arguments(StatsQuery, location="query")
@blp.response(200, EndpointStats)
def get_stats(query: dict[str, Any], app_id: str, endpoint_id: str) -> ResponseReturnValue:
    """How many messages are in each status at the endpoint (default: the last 28 days)."""
    return destinations.endpoint_stats(
        current_principal().org_id, app_id, endpoint_id, query["since"], query["until"]
    )
