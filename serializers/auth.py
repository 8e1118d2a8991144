"""Authentication schemas: AppPortalAccessIn / Out (portal links), ApplicationTokenExpireIn
(expire-all) and PortalSessionOut (what an app portal token may do)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from serializers.applications import ApplicationIn
from serializers.base import BaseSchema, FullMatch, UTCDateTime
from serializers.event_types import name_field

# Svix's AppPortalCapability, in the spec's order (api/capabilities.py says what each allows).
VIEW_BASE = "ViewBase"
VIEW_ENDPOINT_SECRET = "ViewEndpointSecret"
MANAGE_ENDPOINT_SECRET = "ManageEndpointSecret"
MANAGE_TRANSFORMATIONS = "ManageTransformations"
CREATE_ATTEMPTS = "CreateAttempts"
MANAGE_ENDPOINT = "ManageEndpoint"
CAPABILITIES = (
    VIEW_BASE,
    VIEW_ENDPOINT_SECRET,
    MANAGE_ENDPOINT_SECRET,
    MANAGE_TRANSFORMATIONS,
    CREATE_ATTEMPTS,
    MANAGE_ENDPOINT,
)
UNSUPPORTED_CAPABILITIES = frozenset({MANAGE_TRANSFORMATIONS})  # Herald runs no transformations
# Svix: "the token will get all capabilities if the capabilities are not explicitly specified"
DEFAULT_CAPABILITIES = tuple(c for c in CAPABILITIES if c not in UNSUPPORTED_CAPABILITIES)

DEFAULT_EXPIRY = 7 * 24 * 3600
SESSION_ID_RULES = [validate.Length(1, 64), FullMatch(r"^[a-zA-Z0-9@_-]+$")]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class AppPortalAccessIn(BaseSchema):
    """Body of POST /auth/app-portal-access/{app_id}; loads to the token's final
    `capabilities`, `feature_flags`, `expiry` (seconds) and `session_id`."""

    application = fields.Nested(
        ApplicationIn,
        allow_none=True,
        load_default=None,
        metadata={"description": "Creates the application (uid = the path's value) if missing."},
    )
    read_only = fields.Boolean(
        data_key="readOnly",
        allow_none=True,
        load_default=None,
        metadata={"deprecated": True, "description": "true: the ViewBase capability only."},
    )
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(CAPABILITIES)),
        allow_none=True,
        load_default=None,
        metadata={"description": "Default: every capability except ManageTransformations."},
    )
    feature_flags = fields.List(
        name_field(),
        data_key="featureFlags",
        validate=validate.Length(max=25),
        load_default=list,
    )
    expiry = fields.Integer(
        allow_none=True,
        load_default=DEFAULT_EXPIRY,
        validate=validate.Range(3600, DEFAULT_EXPIRY),
        metadata={"description": "Seconds, 1 hour to 7 days (the default)."},
    )
    session_id = fields.String(
        data_key="sessionId", allow_none=True, load_default=None, validate=SESSION_ID_RULES
    )

    @post_load
    def _resolve(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The capabilities the token gets (readOnly, the default) and the default expiry."""
        capabilities = data["capabilities"]
        if capabilities is not None:
            unsupported = sorted(set(capabilities) & UNSUPPORTED_CAPABILITIES)
            if unsupported:
                raise ValidationError(
                    f"Not supported: {', '.join(unsupported)} (Herald runs no transformations).",
                    "capabilities",
                )
            if VIEW_BASE not in capabilities:
                raise ValidationError("The ViewBase capability is always required.", "capabilities")
            if data["read_only"]:
                raise ValidationError(
                    "readOnly and capabilities are mutually exclusive.", "readOnly"
                )
        elif data["read_only"]:
            capabilities = [VIEW_BASE]
        data["capabilities"] = _unique(capabilities or list(DEFAULT_CAPABILITIES))
        data["feature_flags"] = _unique(data["feature_flags"])
        if data["expiry"] is None:
            data["expiry"] = DEFAULT_EXPIRY
        return data


class AppPortalAccessOut(BaseSchema):
    """A portal link (`url`, Herald's /portal/ page with the token in the fragment) and the
    `appsk_` token itself."""

    url = fields.String(required=True)
    token = fields.String(required=True)


class ApplicationTokenExpireIn(BaseSchema):
    """Body of POST /auth/app/{app_id}/expire-all."""

    expiry = fields.Integer(
        allow_none=True,
        load_default=0,
        validate=validate.Range(0, 259200),
        metadata={"description": "Seconds until the tokens expire (default 0: now)."},
    )
    session_ids = fields.List(
        fields.String(validate=SESSION_ID_RULES),
        data_key="sessionIds",
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=1000),
        metadata={"description": "Only the tokens created with one of these sessionIds."},
    )

    @post_load
    def _default(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data["expiry"] is None:
            data["expiry"] = 0
        return data


class PortalSessionOut(BaseSchema):
    """GET /auth/portal-session (Herald's own): the app an app portal token shows and what
    it may do there (capabilities with the ones they imply, in Svix's order)."""

    app_id = fields.String(data_key="appId", required=True)
    app_uid = fields.String(data_key="appUid", allow_none=True, required=True)
    app_name = fields.String(data_key="appName", required=True)
    capabilities = fields.List(fields.String(), required=True)
    feature_flags = fields.List(fields.String(), data_key="featureFlags", required=True)
    expires_at = UTCDateTime(data_key="expiresAt", required=True)
