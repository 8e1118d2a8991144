"""Message schemas: MessageIn (create), MessageOut, and the list/get query strings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema
from webargs.fields import DelimitedList

from serializers.applications import metadata_field, no_control_chars, throttle_rate_field
from serializers.base import (
    CHANNEL_PATTERN,
    UID_PATTERN,
    BaseSchema,
    FullMatch,
    ListQuery,
    UTCDateTime,
    channels_field,
    list_response,
    uid_field,
)

TAG_PATTERN = r"^[a-zA-Z0-9\-_./\\#]+$"
EXPIRED_PAYLOAD: dict[str, Any] = {"expired": True}
MAX_DELIVER_AHEAD = timedelta(hours=24)


def storable(value: str) -> None:
    """PostgreSQL text takes neither NUL nor lone surrogates: reject them (422, not a 500)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Text must be valid UTF-8.") from None
    if "\x00" in value:
        raise ValidationError("Text must not contain NUL characters.")


def _unique(items: list[str] | None) -> list[str] | None:
    """Drop repeated items, keeping the first occurrence (sets on the wire)."""
    return list(dict.fromkeys(items)) if items is not None else None


class MessageApplicationIn(BaseSchema):
    """The `application` of MessageIn: created with the message when the path app is missing,
    so it has ApplicationIn's limits (name 1..256, metadata 4096 bytes, no control characters)."""

    name = fields.String(required=True, validate=[validate.Length(1, 256), no_control_chars])
    uid = uid_field(allow_none=True, load_default=None)
    throttle_rate = throttle_rate_field(load_default=None)
    metadata = metadata_field(allow_none=True, load_default=dict)


class MessageIn(BaseSchema):
    """A message to send; `payload` must be a JSON object."""

    event_type = fields.String(
        data_key="eventType",
        required=True,
        validate=[validate.Length(1, 256), FullMatch(UID_PATTERN)],
    )
    payload = fields.Raw(required=True, metadata={"type": "object"})  # checked in post_load
    event_id = uid_field(data_key="eventId", allow_none=True, load_default=None)
    channels = channels_field(allow_none=True, load_default=None)
    tags = fields.List(
        fields.String(validate=[validate.Length(1, 128), FullMatch(TAG_PATTERN)]),
        validate=validate.Length(max=5),
        allow_none=True,
        load_default=None,
    )
    application = fields.Nested(MessageApplicationIn, allow_none=True, load_default=None)
    payload_retention_period = fields.Integer(
        data_key="payloadRetentionPeriod",
        allow_none=True,
        load_default=None,
        validate=validate.Range(1, 90),
    )
    payload_retention_hours = fields.Integer(
        data_key="payloadRetentionHours",
        allow_none=True,
        load_default=None,
        validate=validate.Range(1, 2160),
    )
    transformations_params = fields.Dict(
        data_key="transformationsParams",
        keys=fields.String(),
        allow_none=True,
        load_default=None,
        metadata={
            "description": "`rawPayload` (a string sent byte for byte instead of `payload`) and "
            "`headers` holding only `content-type` for it; other keys are refused with 422."
        },
    )
    deliver_at = UTCDateTime(
        data_key="deliverAt",
        allow_none=True,
        load_default=None,
        metadata={"description": "Not before this time; at most 24 hours ahead."},
    )

    @validates_schema
    def _deliver_at_within_a_day(self, data: dict[str, Any], **kwargs: Any) -> None:
        at = data.get("deliver_at")
        if at is not None and at > datetime.now(UTC) + MAX_DELIVER_AHEAD:
            raise ValidationError("Must be no more than 24 hours in the future.", "deliverAt")

    @validates_schema
    def _exclusive_retention(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("payload_retention_period") and data.get("payload_retention_hours"):
            raise ValidationError(
                "payloadRetentionPeriod and payloadRetentionHours are mutually exclusive",
                "payloadRetentionHours",
            )

    @post_load
    def _serialize_payload(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Serialise the payload once: this exact text is stored, sent and signed (a raw
        payload is that text already)."""
        data["channels"] = _unique(data["channels"])
        data["tags"] = _unique(data["tags"])
        raw = _raw_payload(data.pop("transformations_params"))
        payload = data.pop("payload")
        if raw is not None:
            data["payload_text"], data["content_type"] = raw
            data["raw"] = True
            return data
        if not isinstance(payload, dict):
            raise ValidationError("Must be a JSON object.", "payload")
        try:
            data["payload_text"] = json.dumps(
                payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
            data["payload_text"].encode("utf-8")  # NUL is escaped; lone surrogates are not
        except (ValueError, UnicodeEncodeError):
            raise ValidationError(
                "Payload must be JSON in UTF-8 (no NaN, Infinity or lone surrogates)", "payload"
            ) from None
        return data


def _raw_payload(params: dict[str, Any] | None) -> tuple[str, str] | None:
    """(text, content type) of `transformationsParams.rawPayload`, or None without one; 422
    for anything in it Herald does not do (a key other than rawPayload and headers, a header
    other than content-type): never silently ignored."""
    if not params:
        return None
    where = "transformationsParams"
    unknown = sorted(set(params) - {"rawPayload", "headers"})
    if unknown:
        raise ValidationError(f"Not supported: {', '.join(unknown)}.", where)
    headers = params.get("headers") or {}
    if not isinstance(headers, dict) or any(not isinstance(v, str) for v in headers.values()):
        raise ValidationError("headers must map names to strings.", where)
    lowered = {str(name).lower(): value for name, value in headers.items()}
    others = sorted(set(lowered) - {"content-type"})
    if others:
        raise ValidationError(f"Only the content-type header is supported: {others}.", where)
    text = params.get("rawPayload")
    if text is None:
        if lowered:
            raise ValidationError("headers need a rawPayload.", where)
        return None
    if not isinstance(text, str):
        raise ValidationError("rawPayload must be a string.", where)
    content_type = lowered.get("content-type", "application/json")
    for value in (text, content_type):
        storable(value)
    if not content_type.isascii() or not content_type.isprintable() or len(content_type) > 256:
        raise ValidationError("content-type must be printable ASCII, 256 at most.", where)
    return text, content_type


class MessageOut(BaseSchema):
    """A message; `payload` is `{}` without content and `{"expired": true}` once purged."""

    id = fields.String(required=True)
    event_type = fields.String(data_key="eventType", required=True)
    payload = fields.Method("_dump_payload", required=True, metadata={"type": "object"})
    event_id = fields.String(data_key="eventId", allow_none=True)
    channels = fields.List(fields.String(), allow_none=True)
    tags = fields.List(fields.String(), allow_none=True)
    timestamp = UTCDateTime(attribute="created_at", required=True)
    deliver_at = UTCDateTime(data_key="deliverAt", allow_none=True)

    def __init__(self, *, with_content: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_content = with_content

    def _dump_payload(self, message: Any) -> Any:
        """The payload object; a raw payload's text as it was given (a string)."""
        if not self.with_content:
            return {}
        if message.payload is None:
            return dict(EXPIRED_PAYLOAD)
        if getattr(message, "raw", False):
            return message.payload
        return json.loads(message.payload)


class WithContentQuery(BaseSchema):
    """`with_content` (default true): include payloads in the response."""

    with_content = fields.Boolean(load_default=True)


class MessageFilterFields(BaseSchema):
    """Filters on messages shared by the message and attempt lists (event_types comma-joined)."""

    channel = fields.String(
        load_default=None, validate=[validate.Length(1, 128), FullMatch(CHANNEL_PATTERN)]
    )
    tag = fields.String(
        load_default=None, validate=[validate.Length(1, 128), FullMatch(TAG_PATTERN)]
    )
    before = UTCDateTime(load_default=None)
    after = UTCDateTime(load_default=None)
    # no load_default: apispec cannot render a None default of a DelimitedList
    event_types = DelimitedList(
        fields.String(validate=[validate.Length(1, 256), FullMatch(UID_PATTERN)])
    )


class MessageListQuery(ListQuery, WithContentQuery, MessageFilterFields):
    """Query of GET /app/{app_id}/msg."""

    class Meta(ListQuery.Meta):
        exclude = ("order",)


MessageListOut = list_response(MessageOut, "ListResponseMessageOut")


class MessagePrecheckIn(BaseSchema):
    """POST .../msg/precheck/active: the event type and channels a message would have."""

    event_type = fields.String(
        data_key="eventType",
        required=True,
        validate=[validate.Length(1, 256), FullMatch(UID_PATTERN)],
    )
    channels = channels_field(allow_none=True, load_default=None)


class MessagePrecheckOut(BaseSchema):
    """Whether any enabled endpoint would receive such a message."""

    active = fields.Boolean(required=True)


class BulkExpungeContentsIn(BaseSchema):
    """POST .../msg/bulk-expunge: message ids or eventIds whose payloads to delete."""

    ids = fields.List(
        fields.String(validate=[validate.Length(1, 256), FullMatch(UID_PATTERN)]),
        load_default=list,
    )


class BulkExpungeContentsOut(BaseSchema):
    """`results`: each given id → `expunged` or `not-found`."""

    results = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.OneOf(["expunged", "not-found"])),
        required=True,
    )
