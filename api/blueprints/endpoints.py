"""The endpoints service (Svix v1): /api/v1/app/{app_id}/endpoint[/{endpoint_id}[/secret|/headers|
/send-example]].

Stats, recover and attempted messages live in api/blueprints/attempts.py.
"""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.capabilities import visible_feature_flags
from api.services import endpoints as service
from api.services import examples
from api.services.lookup import get_app_endpoint
from serializers.endpoints import (
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointListQuery,
    EndpointOut,
    EndpointPatch,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventExampleIn,
    ListResponseEndpointOut,
)
from serializers.messages import MessageOut

blp = Blueprint("endpoints", __name__, url_prefix="/api/v1", description="Endpoints")

ONE = "/app/<string:app_id>/endpoint/<string:endpoint_id>"


@blp.route("/app/<string:app_id>/endpoint")
class Endpoints(MethodView):
    """An application's endpoints."""

    @require_auth
    @blp.arguments(EndpointListQuery, location="query")
    @blp.response(200, ListResponseEndpointOut)
    def get(self, query: dict[str, Any], app_id: str) -> Any:
        """List endpoints (newest first unless `order=ascending`)."""
        return service.list_endpoints(
            current_principal().org_id, app_id, query["limit"], query["iterator"], query["order"]
        )

    @require_auth
    @blp.arguments(EndpointIn)
    @blp.response(201, EndpointOut)
    def post(self, data: dict[str, Any], app_id: str) -> Any:
        """Create an endpoint (a `whsec_` secret is generated unless given)."""
        return service.create_endpoint(current_principal().org_id, app_id, data)


@blp.route(ONE)
class EndpointById(MethodView):
    """One endpoint; both path values accept an id or a uid."""

    @require_auth
    @blp.response(200, EndpointOut)
    def get(self, app_id: str, endpoint_id: str) -> Any:
        """Get an endpoint."""
        return get_app_endpoint(current_principal().org_id, app_id, endpoint_id)

    @require_auth
    @blp.arguments(EndpointUpsertIn)
    @blp.response(200, EndpointOut)
    @blp.alt_response(201, schema=EndpointOut, description="Created")
    def put(self, data: dict[str, Any], app_id: str, endpoint_id: str) -> Any:
        """Create or replace an endpoint (200 updated, 201 created)."""
        endpoint, created = service.upsert_endpoint(
            current_principal().org_id, app_id, endpoint_id, data
        )
        return endpoint, 201 if created else 200

    @require_auth
    @blp.arguments(EndpointPatch)
    @blp.response(200, EndpointOut)
    def patch(self, data: dict[str, Any], app_id: str, endpoint_id: str) -> Any:
        """Partially update an endpoint: absent keys are unchanged, null clears."""
        return service.patch_endpoint(current_principal().org_id, app_id, endpoint_id, data)

    @require_auth
    @blp.response(204)
    def delete(self, app_id: str, endpoint_id: str) -> ResponseReturnValue:
        """Delete an endpoint."""
        service.delete_endpoint(current_principal().org_id, app_id, endpoint_id)
        return "", 204


@blp.route(ONE + "/secret", methods=["GET"])
@require_auth
@blp.response(200, EndpointSecretOut)
def get_secret(app_id: str, endpoint_id: str) -> Any:
    """The endpoint's current signing secret (the public `whpk_` key of an Ed25519 one)."""
    return {"key": service.get_endpoint_secret(current_principal().org_id, app_id, endpoint_id)}


@blp.route(ONE + "/secret/rotate", methods=["POST"])
@require_auth
@blp.arguments(EndpointSecretRotateIn)
@blp.response(200, EndpointSecretOut)
def rotate_secret(data: dict[str, Any], app_id: str, endpoint_id: str) -> Any:
    """Rotate the signing secret; returns the new key (SDK 2.9 reads it), old key kept for
    `gracePeriodSeconds` (default 86400)."""
    key = service.rotate_endpoint_secret(
        current_principal().org_id,
        app_id,
        endpoint_id,
        key=data["key"],
        grace_period_seconds=data["grace_period_seconds"],
    )
    return {"key": key}


@blp.route(ONE + "/send-example", methods=["POST"])
@require_auth
@blp.arguments(EventExampleIn)
@blp.response(202, MessageOut)
def send_example(data: dict[str, Any], app_id: str, endpoint_id: str) -> Any:
    """Send the event type's example (its schema's `examples[exampleIndex]`; `svix.ping`:
    `{"success": true}`) as a message to this endpoint only."""
    principal = current_principal()
    return examples.send_example(
        principal.org_id,
        app_id,
        endpoint_id,
        data["event_type"],
        data["example_index"],
        feature_flags=visible_feature_flags(principal),
    )


@blp.route(ONE + "/headers")
class EndpointHeaders(MethodView):
    """Custom headers sent with every delivery to the endpoint."""

    @require_auth
    @blp.response(200, EndpointHeadersOut)
    def get(self, app_id: str, endpoint_id: str) -> Any:
        """The headers; values of sensitive ones are withheld (listed in `sensitive`)."""
        return service.get_endpoint_headers(current_principal().org_id, app_id, endpoint_id)

    @require_auth
    @blp.arguments(EndpointHeadersIn)
    @blp.response(204)
    def put(self, data: dict[str, Any], app_id: str, endpoint_id: str) -> ResponseReturnValue:
        """Replace all custom headers."""
        service.update_endpoint_headers(
            current_principal().org_id, app_id, endpoint_id, data["headers"], replace=True
        )
        return "", 204

    @require_auth
    @blp.arguments(EndpointHeadersPatchIn)
    @blp.response(204)
    def patch(self, data: dict[str, Any], app_id: str, endpoint_id: str) -> ResponseReturnValue:
        """Merge headers in; a null value (or a name in `deleteHeaders`) removes one."""
        service.update_endpoint_headers(
            current_principal().org_id,
            app_id,
            endpoint_id,
            data["headers"],
            remove=data["delete_headers"],
        )
        return "", 204
