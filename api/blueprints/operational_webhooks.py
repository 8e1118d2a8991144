"""Operational webhooks (Svix v1): /api/v1/operational-webhook/endpoint[/{endpoint_id}[/secret
[/rotate]|/headers]], the endpoints that receive the org's operational events."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.services import operational_webhooks as service
from serializers.operational_webhooks import (
    ListResponseOperationalWebhookEndpointOut,
    OperationalWebhookEndpointHeadersIn,
    OperationalWebhookEndpointHeadersOut,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointListQuery,
    OperationalWebhookEndpointOut,
    OperationalWebhookEndpointSecretIn,
    OperationalWebhookEndpointSecretOut,
    OperationalWebhookEndpointUpsertIn,
)

blp = Blueprint(
    "operational_webhooks", __name__, url_prefix="/api/v1", description="Operational webhooks"
)

ONE = "/operational-webhook/endpoint/<string:endpoint_id>"


@blp.route("/operational-webhook/endpoint")
class OperationalEndpoints(MethodView):
    """The org's operational-webhook endpoints."""

    @require_auth
    @blp.arguments(OperationalWebhookEndpointListQuery, location="query")
    @blp.response(200, ListResponseOperationalWebhookEndpointOut)
    def get(self, query: dict[str, Any]) -> Any:
        """List operational-webhook endpoints (newest first unless `order=ascending`)."""
        return service.list_operational_endpoints(
            current_principal().org_id, query["limit"], query["iterator"], query["order"]
        )

    @require_auth
    @blp.arguments(OperationalWebhookEndpointIn)
    @blp.response(201, OperationalWebhookEndpointOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create an operational-webhook endpoint (a `whsec_` secret is generated unless given)."""
        return service.create_operational_endpoint(current_principal().org_id, data)


@blp.route(ONE)
class OperationalEndpointById(MethodView):
    """One operational-webhook endpoint, by id or uid."""

    @require_auth
    @blp.response(200, OperationalWebhookEndpointOut)
    def get(self, endpoint_id: str) -> Any:
        """Get an operational-webhook endpoint."""
        return service.get_operational_endpoint(current_principal().org_id, endpoint_id)

    @require_auth
    @blp.arguments(OperationalWebhookEndpointUpsertIn)
    @blp.response(200, OperationalWebhookEndpointOut)
    @blp.alt_response(201, schema=OperationalWebhookEndpointOut, description="Created")
    def put(self, data: dict[str, Any], endpoint_id: str) -> Any:
        """Create or replace an operational-webhook endpoint (200 updated, 201 created)."""
        endpoint, created = service.upsert_operational_endpoint(
            current_principal().org_id, endpoint_id, data
        )
        return endpoint, 201 if created else 200

    @require_auth
    @blp.response(204)
    def delete(self, endpoint_id: str) -> ResponseReturnValue:
        """Delete an operational-webhook endpoint."""
        service.delete_operational_endpoint(current_principal().org_id, endpoint_id)
        return "", 204


@blp.route(ONE + "/secret", methods=["GET"])
@require_auth
@blp.response(200, OperationalWebhookEndpointSecretOut)
def get_secret(endpoint_id: str) -> Any:
    """The endpoint's current signing secret."""
    org_id = current_principal().org_id
    return {"key": service.get_operational_endpoint_secret(org_id, endpoint_id)}


@blp.route(ONE + "/secret/rotate", methods=["POST"])
@require_auth
@blp.arguments(OperationalWebhookEndpointSecretIn)
@blp.response(204)
def rotate_secret(data: dict[str, Any], endpoint_id: str) -> ResponseReturnValue:
    """Rotate the signing secret; the old one stays valid for `gracePeriodSeconds` (86400)."""
    service.rotate_operational_endpoint_secret(
        current_principal().org_id, endpoint_id, data["key"], data["grace_period_seconds"]
    )
    return "", 204


@blp.route(ONE + "/headers")
class OperationalEndpointHeaders(MethodView):
    """Custom headers sent with every operational webhook to the endpoint."""

    @require_auth
    @blp.response(200, OperationalWebhookEndpointHeadersOut)
    def get(self, endpoint_id: str) -> Any:
        """The headers; values of sensitive ones are withheld (listed in `sensitive`)."""
        return service.get_operational_endpoint_headers(current_principal().org_id, endpoint_id)

    @require_auth
    @blp.arguments(OperationalWebhookEndpointHeadersIn)
    @blp.response(204)
    def put(self, data: dict[str, Any], endpoint_id: str) -> ResponseReturnValue:
        """Replace all custom headers."""
        service.set_operational_endpoint_headers(
            current_principal().org_id, endpoint_id, data["headers"]
        )
        return "", 204
