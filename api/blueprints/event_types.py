"""The event types service (Svix v1): /api/v1/event-type, /api/v1/event-type/{name} and its
/retry-schedule."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.capabilities import visible_feature_flags
from api.services import event_types as service
from serializers.event_types import (
    EventTypeDeleteQuery,
    EventTypeIn,
    EventTypeListQuery,
    EventTypeOut,
    EventTypePatch,
    EventTypeUpsertIn,
    ListResponseEventTypeOut,
    RetryScheduleInOut,
)

blp = Blueprint("event_types", __name__, url_prefix="/api/v1", description="Event types")

WITHOUT_CONTENT = ListResponseEventTypeOut(exclude=("data.schemas",))


@blp.route("/event-type")
class EventTypes(MethodView):
    """The org's event types."""

    @require_auth
    @blp.arguments(EventTypeListQuery, location="query")
    @blp.response(200, ListResponseEventTypeOut)
    def get(self, query: dict[str, Any]) -> Any:
        """List event types by name; archived ones only with `include_archived=true`,
        schemas only with `with_content=true` (the default)."""
        principal = current_principal()
        page = service.list_event_types(
            principal.org_id,
            query["limit"],
            query["iterator"],
            query["order"],
            include_archived=query["include_archived"],
            feature_flags=visible_feature_flags(principal),
        )
        if not query["with_content"]:
            return jsonify(WITHOUT_CONTENT.dump(page))
        return page

    @require_auth
    @blp.arguments(EventTypeIn)
    @blp.response(201, EventTypeOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create an event type (409 `event_type_exists` unless the existing one is archived)."""
        return service.create_event_type(current_principal().org_id, data)


@blp.route("/event-type/<string:event_type_name>")
class EventTypeByName(MethodView):
    """One event type, by name."""

    @require_auth
    @blp.response(200, EventTypeOut)
    def get(self, event_type_name: str) -> Any:
        """Get an event type (archived ones too)."""
        principal = current_principal()
        return service.get_event_type(
            principal.org_id, event_type_name, visible_feature_flags(principal)
        )

    @require_auth
    @blp.arguments(EventTypeUpsertIn)
    @blp.response(200, EventTypeOut)
    @blp.alt_response(201, schema=EventTypeOut, description="Created")
    def put(self, data: dict[str, Any], event_type_name: str) -> Any:
        """Create or replace an event type (200 updated, 201 created)."""
        event_type, created = service.upsert_event_type(
            current_principal().org_id, event_type_name, data
        )
        return event_type, 201 if created else 200

    @require_auth
    @blp.arguments(EventTypePatch)
    @blp.response(200, EventTypeOut)
    def patch(self, data: dict[str, Any], event_type_name: str) -> Any:
        """Partially update an event type."""
        return service.patch_event_type(current_principal().org_id, event_type_name, data)

    @require_auth
    @blp.arguments(EventTypeDeleteQuery, location="query")
    @blp.response(204)
    def delete(self, query: dict[str, Any], event_type_name: str) -> ResponseReturnValue:
        """Archive an event type, or delete it for good with `expunge=true`."""
        service.delete_event_type(
            current_principal().org_id, event_type_name, expunge=query["expunge"]
        )
        return "", 204


@blp.route("/event-type/<string:event_type_name>/retry-schedule")
class EventTypeRetrySchedule(MethodView):
    """The delays before each retry of the type's deliveries (overriding HERALD_RETRY_SCHEDULE)."""

    @require_auth
    @blp.response(200, RetryScheduleInOut)
    def get(self, event_type_name: str) -> Any:
        """The type's retry schedule (null: HERALD_RETRY_SCHEDULE applies)."""
        return service.get_event_type(current_principal().org_id, event_type_name)

    @require_auth
    @blp.arguments(RetryScheduleInOut)
    @blp.response(200, RetryScheduleInOut)
    def put(self, data: dict[str, Any], event_type_name: str) -> Any:
        """Set the type's retry schedule (null: back to HERALD_RETRY_SCHEDULE; []: no retry);
        the next retry of every pending delivery of the type follows it."""
        return service.set_retry_schedule(
            current_principal().org_id, event_type_name, data["retry_schedule"]
        )
