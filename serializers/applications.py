"""Application schemas (ApplicationIn / Patch / Out) and field helpers shared with endpoints."""

from __future__ import annotations

import json
import re
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate

from serializers.base import BaseSchema, ListQuery, UTCDateTime, list_response, uid_field

METADATA_MAX_BYTES = 4096
CONTROL_CHARS = re.compile(r"[\x00-\x08\ud800-\udfff]")  # NUL; lone surrogates cannot be encoded


def no_control_chars(value: str) -> None:
    """Reject control characters 0x00-0x08 and lone surrogates (PostgreSQL cannot store them)."""
    if CONTROL_CHARS.search(value):
        raise ValidationError("Control characters and unpaired surrogates are not allowed.")


def prefixed_uid_field(prefix: str, **kwargs: Any) -> fields.String:
    """A uid that must not look like an id: `app_...` / `ep_...` are reserved for ids."""

    def check(value: str) -> None:
        if value.startswith(prefix + "_"):
            raise ValidationError(
                "Uids are not allowed to have the same prefix as the ID. Prefix with _?"
            )

    field = uid_field(**kwargs)
    field.validators.append(check)
    return field


def _check_metadata(value: dict[str, str] | None) -> None:
    if value is None:
        return
    for key, item in value.items():
        no_control_chars(key)
        no_control_chars(item)
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > METADATA_MAX_BYTES:
        raise ValidationError(f"Metadata must not exceed {METADATA_MAX_BYTES} bytes.")


def metadata_field(**kwargs: Any) -> fields.Dict:
    """`metadata`: an object of string to string, at most 4096 bytes serialized."""
    return fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        data_key="metadata",
        validate=_check_metadata,
        **kwargs,
    )


def throttle_rate_field(**kwargs: Any) -> fields.Integer:
    """`throttleRate`: messages per second, 1..65535, nullable."""
    return fields.Integer(
        data_key="throttleRate", allow_none=True, validate=validate.Range(1, 65535), **kwargs
    )


def alias_keys(data: Any, aliases: dict[str, str]) -> Any:
    """Map deprecated wire names onto current ones (the current name wins if both are sent)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, new in aliases.items():
        if old in data:
            value = data.pop(old)
            data.setdefault(new, value)
    return data


def _name_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(1, 256), no_control_chars], **kwargs)


class ApplicationIn(BaseSchema):
    """Body of POST /app and PUT /app/{app_id}."""

    name = _name_field(required=True)
    uid = prefixed_uid_field("app", allow_none=True, load_default=None)
    throttle_rate = throttle_rate_field(load_default=None)
    metadata_ = metadata_field(allow_none=True, load_default=dict)

    @pre_load
    def _legacy(self, data: Any, **kwargs: Any) -> Any:
        return alias_keys(data, {"rateLimit": "throttleRate"})


class ApplicationPatch(BaseSchema):
    """Body of PATCH /app/{app_id}: absent keys stay unchanged, null clears uid/throttleRate."""

    name = _name_field()
    uid = prefixed_uid_field("app", allow_none=True)
    throttle_rate = throttle_rate_field()
    metadata_ = metadata_field(allow_none=True)

    @pre_load
    def _legacy(self, data: Any, **kwargs: Any) -> Any:
        return alias_keys(data, {"rateLimit": "throttleRate"})


class ApplicationOut(BaseSchema):
    """An application as returned by the API."""

    id = fields.String(required=True)
    uid = fields.String(allow_none=True)
    name = fields.String(required=True)
    throttle_rate = fields.Integer(data_key="throttleRate", allow_none=True)
    metadata_ = fields.Dict(
        keys=fields.String(), values=fields.String(), data_key="metadata", required=True
    )
    created_at = UTCDateTime(data_key="createdAt", required=True)
    updated_at = UTCDateTime(data_key="updatedAt", required=True)


class ApplicationCreateQuery(BaseSchema):
    """Query of POST /app: `get_if_exists=true` returns the app with the body's uid if any."""

    get_if_exists = fields.Boolean(load_default=False)


class ApplicationListQuery(ListQuery):
    """Query of GET /app: the `exclude_apps_*` filters (Svix Play endpoints do not exist
    here, so that flag excludes nothing)."""

    exclude_apps_with_no_endpoints = fields.Boolean(load_default=False)
    exclude_apps_with_disabled_endpoints = fields.Boolean(load_default=False)
    exclude_apps_with_svix_play_endpoints = fields.Boolean(load_default=False)


ListResponseApplicationOut = list_response(ApplicationOut, "ListResponseApplicationOut")
