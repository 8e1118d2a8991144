"""Event type schemas (EventTypeIn / EventTypeUpsertIn / EventTypePatch / EventTypeOut)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError
from marshmallow import ValidationError, fields, post_load, validate

from serializers.applications import no_control_chars
from serializers.base import (
    UID_PATTERN,
    BaseSchema,
    FullMatch,
    ListQuery,
    UTCDateTime,
    list_response,
)

UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
NAME_RULES = [validate.Length(1, 256), FullMatch(UID_PATTERN)]


def _unstorable(value: Any) -> bool:
    """True when a JSON value holds NUL or a lone surrogate anywhere (JSONB cannot store it)."""
    if isinstance(value, str):
        return UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


def check_schemas(value: dict[str, Any] | None) -> None:
    """Every version's value must be a valid JSON Schema (Draft 7)."""
    if value is None:
        return
    if _unstorable(value):
        raise ValidationError("Schemas must not contain NUL characters or lone surrogates.")
    for version, schema in value.items():
        if not isinstance(schema, (dict, bool)):
            raise ValidationError(f"Schema for version {version!r} must be a JSON object.")
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValidationError(
                f"Invalid JSON Schema for version {version!r}: {exc.message}"
            ) from None
        except RecursionError:
            raise ValidationError(f"Schema for version {version!r} is nested too deeply.") from None


def name_field(**kwargs: Any) -> fields.String:
    """An event-type (or group / feature-flag) name: 1..256 of [a-zA-Z0-9-_.]."""
    return fields.String(validate=NAME_RULES, **kwargs)


class _EventTypeBody(BaseSchema):
    """Fields shared by EventTypeIn, EventTypeUpsertIn and EventTypePatch."""

    description = fields.String(validate=no_control_chars)
    archived = fields.Boolean()
    deprecated = fields.Boolean()
    schemas = fields.Dict(keys=fields.String(), allow_none=True, validate=check_schemas)
    group_name = name_field(data_key="groupName", allow_none=True)
    feature_flag = name_field(data_key="featureFlag", allow_none=True)
    feature_flags = fields.List(
        name_field(),
        data_key="featureFlags",
        allow_none=True,
        validate=validate.Length(max=1, error="At most one feature flag is supported."),
    )

    @post_load
    def _fold_feature_flags(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Cloud's `featureFlags` list and OSS's `featureFlag` share one column."""
        if "feature_flags" in data:
            flags = data.pop("feature_flags")
            if data.get("feature_flag") is None:
                data["feature_flag"] = flags[0] if flags else None
        return data


class EventTypeUpsertIn(_EventTypeBody):
    """Body of PUT /event-type/{name}: a full replacement."""

    description = fields.String(required=True, validate=no_control_chars)
    archived = fields.Boolean(load_default=False)
    deprecated = fields.Boolean(load_default=False)
    schemas = fields.Dict(
        keys=fields.String(), allow_none=True, load_default=None, validate=check_schemas
    )
    group_name = name_field(data_key="groupName", allow_none=True, load_default=None)
    feature_flag = name_field(data_key="featureFlag", allow_none=True, load_default=None)


class EventTypeIn(EventTypeUpsertIn):
    """Body of POST /event-type."""

    name = name_field(required=True)


class EventTypePatch(_EventTypeBody):
    """Body of PATCH /event-type/{name}: absent keys stay unchanged."""


class EventTypeOut(BaseSchema):
    """An event type as returned by the API."""

    name = fields.String(required=True)
    description = fields.String(required=True)
    archived = fields.Boolean(required=True)
    deprecated = fields.Boolean(required=True)
    schemas = fields.Dict(keys=fields.String(), allow_none=True)
    group_name = fields.String(data_key="groupName", allow_none=True)
    feature_flag = fields.String(data_key="featureFlag", allow_none=True)
    feature_flags = fields.Function(
        lambda obj: [obj.feature_flag] if obj.feature_flag else None,
        data_key="featureFlags",
        allow_none=True,
        metadata={"type": "array", "items": {"type": "string"}},
    )
    created_at = UTCDateTime(data_key="createdAt", required=True)
    updated_at = UTCDateTime(data_key="updatedAt", required=True)


class EventTypeListQuery(ListQuery):
    """Query of GET /event-type: the iterator is an event-type name."""

    include_archived = fields.Boolean(load_default=False)
    with_content = fields.Boolean(load_default=True)


class EventTypeDeleteQuery(BaseSchema):
    """Query of DELETE /event-type/{name}: `expunge=true` deletes instead of archiving."""

    expunge = fields.Boolean(load_default=False)


ListResponseEventTypeOut = list_response(EventTypeOut, "ListResponseEventTypeOut")

RETRY_DELAY_MAX = 7 * 86400  # seconds: the longest delay a retry schedule may hold
RETRY_SCHEDULE_MAX = 50  # retries a schedule may hold


class Duration(BaseSchema):
    """Svix's Duration: whole seconds and nanoseconds."""

    secs = fields.Integer(required=True, validate=validate.Range(0, RETRY_DELAY_MAX))
    nanos = fields.Integer(load_default=0, validate=validate.Range(0, 999_999_999))


class DurationField(fields.Nested):
    """A delay held as seconds (int, or float with a fraction), a Duration on the wire."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Duration, **kwargs)

    # Nested's own signature (`nested_obj`), which mypy finds at odds with Field's
    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if nested_obj is None:
            return None
        secs = int(nested_obj)
        return {"secs": secs, "nanos": min(round((nested_obj - secs) * 1e9), 999_999_999)}

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | Sequence[str] | AbstractSet[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        loaded = super()._deserialize(value, attr, data, partial, **kwargs)
        return loaded["secs"] + loaded["nanos"] / 1e9 if loaded["nanos"] else loaded["secs"]


class RetryScheduleInOut(BaseSchema):
    """Body and answer of /event-type/{name}/retry-schedule: the delay before each retry of
    the type's deliveries; null (or absent) = HERALD_RETRY_SCHEDULE, [] = no retry."""

    retry_schedule = fields.List(
        DurationField(),
        data_key="retrySchedule",
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=RETRY_SCHEDULE_MAX),
    )
