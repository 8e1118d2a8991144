"""Endpoint schemas: EndpointIn / UpsertIn / Patch / Out, signing secrets and custom headers."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, post_load, pre_load, validate

from serializers.applications import (
    alias_keys,
    metadata_field,
    no_control_chars,
    prefixed_uid_field,
    throttle_rate_field,
)
from serializers.base import BaseSchema, ListQuery, UTCDateTime, channels_field, list_response
from serializers.event_types import name_field

SECRET_RE = re.compile(r"^(whsec_|whsk_)?([a-zA-Z0-9+/=]{32,100})$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
HEADER_VALUE_RE = re.compile(r"^[\t\x20-\x7e]*$")
FORBIDDEN_HEADERS = frozenset(
    (
        "user-agent",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "age",
        "cache-control",
        "clear-site-data",
        "expires",
        "pragma",
        "warning",
        "content-length",
        "content-type",
        "content-encoding",
        "content-language",
        "content-location",
    )
)
FORBIDDEN_PREFIXES = (
    "x-amz-",
    "x-amzn-",
    "x-google",
    "x-goog-",
    "x-gfe",
    "x-azure-",
    "x-fd-",
    "x-svix-",
    "svix-",
    "webhook-",
)
ALIASES = {"filterTypes": "eventTypes", "rateLimit": "throttleRate"}


def check_url(value: str) -> None:
    """http(s) URLs only, with a host, a port in 1..65535 if any, and no whitespace or control
    characters."""
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValidationError("Not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("Endpoint URL schemes must be http or https")
    try:
        port = parts.port  # ValueError above 65535: `:99999` would only fail at delivery
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValidationError("Not a valid URL: the port must be 1 to 65535.")
    if any(
        ord(char) <= 0x20 or ord(char) == 0x7F or 0xD800 <= ord(char) <= 0xDFFF for char in value
    ):
        raise ValidationError("Not a valid URL.")
    validate.URL(require_tld=False, schemes={"http", "https"}, error="Not a valid URL.")(value)


def check_secret(value: str | None) -> None:
    """`whsec_` (optional) + base64 of 24..75 bytes (HMAC), or `whsk_` + base64 of an Ed25519
    key: the 32-byte seed, or the 64-byte seed + public key (Svix's form)."""
    if value is None:
        return
    match = SECRET_RE.fullmatch(value)
    try:
        raw = base64.b64decode(match.group(2), validate=True) if match else b""
    except (binascii.Error, ValueError):
        raw = b""
    if match and match.group(1) == "whsk_":
        if len(raw) not in (32, 64):
            raise ValidationError(
                "Ed25519 secrets must be `whsk_` + base64 of the 32-byte seed or of the "
                "64-byte seed and public key."
            )
        return
    if not 24 <= len(raw) <= 75:
        raise ValidationError(
            "Secrets must be `whsec_` + base64 of 24 to 75 random bytes, or an Ed25519 `whsk_` key."
        )


def normalize_secret(value: str | None) -> str | None:
    """Store every secret with its prefix (`whsec_` when it has none)."""
    if value is None or value.startswith(("whsec_", "whsk_")):
        return value
    return "whsec_" + value


def check_headers(value: dict[str, str | None] | None) -> None:
    """Header names must be valid, not hop-by-hop/reserved; values visible ASCII, <= 4096 B."""
    for name, item in (value or {}).items():
        lower = name.lower()
        if not HEADER_NAME_RE.fullmatch(name):
            raise ValidationError(f"Invalid header name: {name!r}")
        if lower in FORBIDDEN_HEADERS or lower.startswith(FORBIDDEN_PREFIXES):
            raise ValidationError(f"Header name is not allowed: {name!r}")
        if item is not None and (len(item) > 4096 or not HEADER_VALUE_RE.fullmatch(item)):
            raise ValidationError(f"Invalid value for header {name!r}")


def headers_field(nullable_values: bool = False, **kwargs: Any) -> fields.Dict:
    """An object of header name to value, validated by check_headers."""
    return fields.Dict(
        keys=fields.String(),
        values=fields.String(allow_none=nullable_values),
        validate=check_headers,
        **kwargs,
    )


def event_types_field(**kwargs: Any) -> fields.List:
    """`eventTypes` (legacy `filterTypes`): 1+ event-type names, nullable."""
    return fields.List(
        name_field(),
        data_key="eventTypes",
        allow_none=True,
        validate=validate.Length(min=1),
        **kwargs,
    )


def _dedupe(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("event_types", "channels"):
        if data.get(key):
            data[key] = list(dict.fromkeys(data[key]))
    if data.get("secret"):
        data["secret"] = normalize_secret(data["secret"])
    return data


class EndpointUpsertIn(BaseSchema):
    """Body of PUT /app/{app_id}/endpoint/{endpoint_id}: a full replacement."""

    url = fields.String(
        required=True, validate=[validate.Length(1, 65536), check_url], metadata={"format": "uri"}
    )
    description = fields.String(load_default="", validate=no_control_chars)
    uid = prefixed_uid_field("ep", allow_none=True, load_default=None)
    throttle_rate = throttle_rate_field(load_default=None)
    disabled = fields.Boolean(load_default=False)
    event_types = event_types_field(load_default=None)
    channels = channels_field(allow_none=True, load_default=None)
    metadata_ = metadata_field(allow_none=True, load_default=dict)

    @pre_load
    def _legacy(self, data: Any, **kwargs: Any) -> Any:
        return alias_keys(data, ALIASES)

    @post_load
    def _normalize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _dedupe(data)


class EndpointIn(EndpointUpsertIn):
    """Body of POST /app/{app_id}/endpoint (a secret is generated unless given)."""

    secret = fields.String(allow_none=True, load_default=None, validate=check_secret)
    headers = headers_field(allow_none=True, load_default=None)


class EndpointPatch(BaseSchema):
    """Body of PATCH: absent keys stay unchanged; null clears uid, throttleRate, filters."""

    url = fields.String(validate=[validate.Length(1, 65536), check_url], metadata={"format": "uri"})
    description = fields.String(validate=no_control_chars)
    uid = prefixed_uid_field("ep", allow_none=True)
    throttle_rate = throttle_rate_field()
    disabled = fields.Boolean()
    event_types = event_types_field()
    channels = channels_field(allow_none=True)
    metadata_ = metadata_field(allow_none=True)

    @pre_load
    def _legacy(self, data: Any, **kwargs: Any) -> Any:
        return alias_keys(data, ALIASES)

    @post_load
    def _normalize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _dedupe(data)


class EndpointOut(BaseSchema):
    """An endpoint as returned by the API (with deprecated `filterTypes` for old SDKs)."""

    id = fields.String(required=True)
    uid = fields.String(allow_none=True)
    url = fields.String(required=True, metadata={"format": "uri"})
    description = fields.String(required=True)
    throttle_rate = fields.Integer(data_key="throttleRate", allow_none=True)
    disabled = fields.Boolean(required=True)
    event_types = fields.List(fields.String(), data_key="eventTypes", allow_none=True)
    filter_types = fields.List(
        fields.String(),
        attribute="event_types",
        data_key="filterTypes",
        allow_none=True,
        dump_only=True,
    )
    channels = fields.List(fields.String(), allow_none=True)
    metadata_ = fields.Dict(
        keys=fields.String(), values=fields.String(), data_key="metadata", required=True
    )
    version = fields.Constant(1, metadata={"type": "integer", "description": "Deprecated."})
    created_at = UTCDateTime(data_key="createdAt", required=True)
    updated_at = UTCDateTime(data_key="updatedAt", required=True)


class EndpointSecretOut(BaseSchema):
    """`{"key": "whsec_..."}`, or the public `whpk_...` key of an Ed25519 (`whsk_`) secret."""

    key = fields.String(required=True)


class EndpointSecretRotateIn(BaseSchema):
    """Body of POST .../secret/rotate: a new key (or generate one) and the old key's grace."""

    key = fields.String(allow_none=True, load_default=None, validate=check_secret)
    grace_period_seconds = fields.Integer(
        data_key="gracePeriodSeconds",
        allow_none=True,
        load_default=None,
        validate=validate.Range(0, 604800),
    )

    @post_load
    def _normalize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["key"] = normalize_secret(data["key"])
        return data


class EndpointHeadersIn(BaseSchema):
    """Body of PUT .../headers: the full set of custom headers."""

    headers = headers_field(required=True)


class EndpointHeadersPatchIn(BaseSchema):
    """Body of PATCH .../headers: merged in; a null value (or `deleteHeaders`) removes."""

    headers = headers_field(nullable_values=True, required=True)
    delete_headers = fields.List(fields.String(), data_key="deleteHeaders", load_default=list)


class EndpointHeadersOut(BaseSchema):
    """Custom headers; values of sensitive ones are withheld and only their names listed."""

    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    sensitive = fields.List(fields.String(), required=True)


class EndpointListQuery(ListQuery):
    """Query of GET /app/{app_id}/endpoint (newest first by default)."""


ListResponseEndpointOut = list_response(EndpointOut, "ListResponseEndpointOut")


class EventExampleIn(BaseSchema):
    """Body of POST .../send-example: which event type's example to send, and which of its
    schema's `examples` (default the first)."""

    event_type = name_field(data_key="eventType", required=True)
    example_index = fields.Integer(
        data_key="exampleIndex", load_default=0, validate=validate.Range(min=0)
    )
