"""Shared schema pieces: the base schema, UTC datetimes, list responses and list queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

UID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
CHANNEL_PATTERN = r"^[a-zA-Z0-9\-_.:+]+$"


class FullMatch(validate.Regexp):
    """validate.Regexp on the whole string: `re.match` lets `$` accept a trailing newline, so
    "shop\\n" would pass `^[a-z]+$`. The pattern still reaches the OpenAPI document."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class BaseSchema(Schema):
    """Unknown keys are ignored: the SDK sends fields we may not know."""

    class Meta:
        unknown = EXCLUDE
        ordered = True


class UTCDateTime(fields.DateTime):
    """RFC 3339 in UTC with a `Z`; naive input is taken as UTC."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        parsed: datetime = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+05:00 has no UTC equivalent: 422, not 500
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


def uid_field(**kwargs: Any) -> fields.String:
    """An optional uid/eventId: 1..256 of [a-zA-Z0-9-_.]."""
    return fields.String(validate=[validate.Length(1, 256), FullMatch(UID_PATTERN)], **kwargs)


def channels_field(**kwargs: Any) -> fields.List:
    """Channels: 1..10 unique names."""
    return fields.List(
        fields.String(validate=[validate.Length(1, 128), FullMatch(CHANNEL_PATTERN)]),
        validate=validate.Length(1, 10),
        **kwargs,
    )


class ListQuery(BaseSchema):
    """Cursor pagination: `limit` 1..250 (default 50), `iterator` (leading `-`: previous page)."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 250))
    iterator = fields.String(
        load_default=None, allow_none=True, validate=FullMatch(r"^[^\x00]*$")
    )  # PostgreSQL cannot compare with a NUL byte: 422 instead of 500
    order = fields.String(load_default=None, validate=validate.OneOf(["ascending", "descending"]))


class ListResponse(BaseSchema):
    """`{data, iterator, prevIterator, done}`; `iterator` is always present (maybe null)."""

    iterator = fields.String(required=True, allow_none=True)
    prev_iterator = fields.String(data_key="prevIterator", allow_none=True)
    done = fields.Boolean(required=True)


def list_response(item_schema: type[Schema], name: str) -> type[Schema]:
    """A ListResponse schema class whose `data` holds `item_schema` items."""
    return type(
        name, (ListResponse,), {"data": fields.List(fields.Nested(item_schema), required=True)}
    )


class HttpErrorOut(BaseSchema):
    """Svix's error body for every non-422 error: `{"code", "detail"}`."""

    code = fields.String(required=True)
    detail = fields.String(required=True)


class ValidationErrorOut(BaseSchema):
    """One validation error: where (`loc`, e.g. ["body", "url"]), what, and its type."""

    loc = fields.List(fields.Raw(), required=True)
    msg = fields.String(required=True)
    type = fields.String(required=True)


class HttpValidationErrorOut(BaseSchema):
    """Svix's 422 body: `{"detail": [ValidationError, ...]}`."""

    detail = fields.List(fields.Nested(ValidationErrorOut), required=True)
