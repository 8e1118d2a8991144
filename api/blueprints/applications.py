"""The applications service (Svix v1): /api/v1/app and /api/v1/app/{app_id}."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.services import applications as service
from api.services.lookup import get_application
from serializers.applications import (
    ApplicationCreateQuery,
    ApplicationIn,
    ApplicationListQuery,
    ApplicationOut,
    ApplicationPatch,
    ListResponseApplicationOut,
)

blp = Blueprint("applications", __name__, url_prefix="/api/v1", description="Applications")


@blp.route("/app")
class Applications(MethodView):
    """The org's applications."""

    @require_auth
    @blp.arguments(ApplicationListQuery, location="query")
    @blp.response(200, ListResponseApplicationOut)
    def get(self, query: dict[str, Any]) -> Any:
        """List applications (ascending by id unless `order=descending`)."""
        return service.list_applications(
            current_principal().org_id,
            query["limit"],
            query["iterator"],
            query["order"],
            without_endpoints=not query["exclude_apps_with_no_endpoints"],
            only_disabled=not query["exclude_apps_with_disabled_endpoints"],
        )

    @require_auth
    @blp.arguments(ApplicationCreateQuery, location="query")
    @blp.arguments(ApplicationIn)
    @blp.response(201, ApplicationOut)
    @blp.alt_response(200, schema=ApplicationOut, description="Existing app (get_if_exists)")
    def post(self, query: dict[str, Any], data: dict[str, Any]) -> Any:
        """Create an application; `get_if_exists=true` returns the one with the same uid."""
        app, created = service.create_application(
            current_principal().org_id, data, get_if_exists=query["get_if_exists"]
        )
        return app, 201 if created else 200


@blp.route("/app/<string:app_id>")
class ApplicationById(MethodView):
    """One application, by id or uid."""

    @require_auth
    @blp.response(200, ApplicationOut)
    def get(self, app_id: str) -> Any:
        """Get an application."""
        return get_application(current_principal().org_id, app_id)

    @require_auth
    @blp.arguments(ApplicationIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(201, schema=ApplicationOut, description="Created")
    def put(self, data: dict[str, Any], app_id: str) -> Any:
        """Create or replace an application (200 updated, 201 created)."""
        app, created = service.upsert_application(current_principal().org_id, app_id, data)
        return app, 201 if created else 200

    @require_auth
    @blp.arguments(ApplicationPatch)
    @blp.response(200, ApplicationOut)
    def patch(self, data: dict[str, Any], app_id: str) -> Any:
        """Partially update an application: absent keys are unchanged, null clears."""
        return service.patch_application(current_principal().org_id, app_id, data)

    @require_auth
    @blp.response(204)
    def delete(self, app_id: str) -> ResponseReturnValue:
        """Delete an application with its endpoints and messages."""
        service.delete_application(current_principal().org_id, app_id)
        return "", 204
