"""Messages (Svix v1): create, precheck, list, get (id or eventId), expunge content (one, some,
all)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.blueprints.lean import documented, parse
from api.models import Message
from api.services import background_tasks, messages
from api.services.lookup import get_app_message
from serializers.background_tasks import ExpungeAllContentsOut
from serializers.messages import (
    BulkExpungeContentsIn,
    BulkExpungeContentsOut,
    MessageIn,
    MessageListOut,
    MessageListQuery,
    MessageOut,
    MessagePrecheckIn,
    MessagePrecheckOut,
    WithContentQuery,
)

blp = Blueprint("messages", __name__, url_prefix="/api/v1", description="Messages")

# `payload` depends on `with_content`, so the views dump with one of these and return a Response
# (flask-smorest passes a Response through untouched; the decorators still document the schema).
_SCHEMAS = {True: MessageOut(with_content=True), False: MessageOut(with_content=False)}


def _json(body: Any, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


_MESSAGE_IN, _WITH_CONTENT = MessageIn(), WithContentQuery()


@blp.route("/app/<app_id>/msg", methods=["POST"])
@documented(
    blp.arguments(_MESSAGE_IN),
    blp.arguments(_WITH_CONTENT, location="query"),
    blp.response(202, MessageOut),
)
@require_auth
def create_message(app_id: str) -> ResponseReturnValue:
    """Send a message to the app's matching endpoints; `application` creates a missing app."""
    # the hot path: parsed here, not by flask-smorest's wrappers (api/blueprints/lean.py)
    data, query = parse(_MESSAGE_IN), parse(_WITH_CONTENT, "query")
    message = messages.create_message(current_principal().org_id, app_id, data)
    return _json(_SCHEMAS[query["with_content"]].dump(message), 202)


@blp.route("/app/<app_id>/msg", methods=["GET"])
@require_auth
@blp.arguments(MessageListQuery(), location="query")
@blp.response(200, MessageListOut)
def list_messages(query: dict[str, Any], app_id: str) -> ResponseReturnValue:
    """The app's messages, newest first; filters: channel, tag, before, after, event_types."""
    with_content = query.pop("with_content")
    page = messages.list_messages(current_principal().org_id, app_id, **query)
    items: list[Message] = page.data
    body = {
        "data": _SCHEMAS[with_content].dump(items, many=True),
        "iterator": page.iterator,
        "prevIterator": page.prev_iterator,
        "done": page.done,
    }
    return _json(body, 200)


@blp.route("/app/<app_id>/msg/<msg_id>", methods=["GET"])
@require_auth
@blp.arguments(WithContentQuery(), location="query")
@blp.response(200, MessageOut)
def get_message(query: dict[str, Any], app_id: str, msg_id: str) -> ResponseReturnValue:
    """One message by id or eventId."""
    message = get_app_message(current_principal().org_id, app_id, msg_id)
    return _json(_SCHEMAS[query["with_content"]].dump(message), 200)


@blp.route("/app/<app_id>/msg/<msg_id>/content", methods=["DELETE"])
@require_auth
@blp.response(204)
def expunge_content(app_id: str, msg_id: str) -> ResponseReturnValue:
    """Delete the message's payload now (it then reads as `{"expired": true}`)."""
    messages.expunge_message_content(current_principal().org_id, app_id, msg_id)
    return "", 204


@blp.route("/app/<app_id>/msg/precheck/active", methods=["POST"])
@require_auth
@blp.arguments(MessagePrecheckIn)
@blp.response(200, MessagePrecheckOut)
def precheck(data: dict[str, Any], app_id: str) -> ResponseReturnValue:
    """Whether any enabled endpoint would receive a message of this event type and channels."""
    org_id = current_principal().org_id
    return {
        "active": messages.precheck_message(org_id, app_id, data["event_type"], data["channels"])
    }


@blp.route("/app/<app_id>/msg/bulk-expunge", methods=["POST"])
@require_auth
@blp.arguments(BulkExpungeContentsIn)
@blp.response(200, BulkExpungeContentsOut)
def bulk_expunge_content(data: dict[str, Any], app_id: str) -> ResponseReturnValue:
    """Delete the payloads of the given messages (ids or eventIds): `expunged` or `not-found`."""
    org_id = current_principal().org_id
    return {"results": messages.bulk_expunge_message_content(org_id, app_id, data["ids"])}


@blp.route("/app/<app_id>/msg/expunge-all-contents", methods=["POST"])
@require_auth
@blp.response(202, ExpungeAllContentsOut)
def expunge_all_contents(app_id: str) -> ResponseReturnValue:
    """Delete every payload of the app's messages, as an `application.purge_content` task."""
    return background_tasks.start_purge_content(current_principal().org_id, app_id)
