"""Attempt-log schemas: MessageAttemptOut, per-destination status, RecoverIn/Out, EndpointStats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, missing, validate, validates_schema

from serializers.base import (
    UID_PATTERN,
    BaseSchema,
    ListQuery,
    UTCDateTime,
    list_response,
)
from serializers.messages import MessageFilterFields, MessageOut

STATUS_TEXT = {0: "success", 1: "pending", 2: "fail", 3: "sending", 4: "canceled"}
STATUS_CODE_CLASSES = (0, 100, 200, 300, 400, 500)
RECOVER_MAX_WINDOW = timedelta(days=14, minutes=5)
_MSG_WITHOUT_CONTENT = MessageOut(with_content=False)  # an attempt's `msg` never has a payload


def status_text(obj: Any) -> str:
    """The MessageStatusText of an object's numeric `status`."""
    return STATUS_TEXT[int(obj.status)]


class StatusFields(BaseSchema):
    """`status`, `statusText` and `nextAttempt` of a message at one destination."""

    status = fields.Integer(required=True)
    status_text = fields.Function(status_text, data_key="statusText", required=True)
    next_attempt = UTCDateTime(data_key="nextAttempt", allow_none=True)


class MessageAttemptOut(BaseSchema):
    """One attempt; `response` is `"{}"` without content; `msg` only with `with_msg=true`."""

    id = fields.String(required=True)
    msg_id = fields.String(data_key="msgId", required=True)
    endpoint_id = fields.String(data_key="endpointId", required=True)
    url = fields.String(required=True)
    response = fields.Method("_dump_response", required=True, metadata={"type": "string"})
    response_status_code = fields.Integer(data_key="responseStatusCode", required=True)
    response_duration_ms = fields.Integer(data_key="responseDurationMs", required=True)
    status = fields.Integer(required=True)
    status_text = fields.Function(status_text, data_key="statusText", required=True)
    trigger_type = fields.Integer(data_key="triggerType", required=True)
    timestamp = UTCDateTime(attribute="created_at", required=True)
    msg = fields.Method("_dump_msg", metadata={"type": "object"})

    def __init__(
        self, *, with_content: bool = True, messages: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.with_content = with_content
        self.messages = messages  # msg_id -> Message, given only for `with_msg=true`

    def _dump_response(self, attempt: Any) -> str:
        return str(attempt.response) if self.with_content else "{}"

    def _dump_msg(self, attempt: Any) -> Any:
        if self.messages is None or attempt.msg_id not in self.messages:
            return missing
        return _MSG_WITHOUT_CONTENT.dump(self.messages[attempt.msg_id])


class EndpointMessageOut(MessageOut, StatusFields):
    """A message sent to one endpoint, with its status there (list_attempted_messages)."""


class MessageEndpointOut(StatusFields):
    """An endpoint a message went to (EndpointOut minus metadata), with its status there."""

    id = fields.String(required=True)
    uid = fields.String(allow_none=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    throttle_rate = fields.Integer(data_key="throttleRate", allow_none=True)
    disabled = fields.Boolean()
    event_types = fields.List(fields.String(), data_key="eventTypes", allow_none=True)
    channels = fields.List(fields.String(), allow_none=True)
    created_at = UTCDateTime(data_key="createdAt", required=True)
    updated_at = UTCDateTime(data_key="updatedAt", required=True)


class MessageFilterQuery(ListQuery, MessageFilterFields):
    """Filters shared by the attempt lists: time window, message channel/tag/event types."""

    class Meta(ListQuery.Meta):
        exclude = ("order",)

    status = fields.Integer(load_default=None, validate=validate.OneOf(sorted(STATUS_TEXT)))
    with_content = fields.Boolean(load_default=True)
    expanded_statuses = fields.Boolean(load_default=True)  # accepted; we never hide status 4


class AttemptListQuery(MessageFilterQuery):
    """GET .../attempt/endpoint/{endpoint_id}: plus `status_code_class` and `with_msg`."""

    status_code_class = fields.Integer(
        load_default=None, validate=validate.OneOf(STATUS_CODE_CLASSES)
    )
    with_msg = fields.Boolean(load_default=False)


class AttemptByMsgQuery(AttemptListQuery):
    """GET .../attempt/msg/{msg_id}: plus `endpoint_id` (id or uid)."""

    endpoint_id = fields.String(
        load_default=None, validate=[validate.Length(1, 256), validate.Regexp(UID_PATTERN)]
    )


class DestinationListQuery(ListQuery):
    """GET .../msg/{msg_id}/endpoint: plain pagination, ascending by endpoint id."""

    class Meta(ListQuery.Meta):
        exclude = ("order",)


class RecoverIn(BaseSchema):
    """`since` (required) and `until` (default now): at most 14 days apart."""

    since = UTCDateTime(required=True)
    until = UTCDateTime(allow_none=True, load_default=None)

    @validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        until = data.get("until") or datetime.now(UTC)
        if until - data["since"] > RECOVER_MAX_WINDOW:
            raise ValidationError("Cannot recover more than 14 days of messages", "since")


class RecoverOut(BaseSchema):
    """The background task started by a recover: `{id, status, task, updatedAt}`."""

    id = fields.String(required=True)
    status = fields.String(required=True)
    task = fields.String(required=True)
    updated_at = UTCDateTime(data_key="updatedAt", required=True)


class StatsQuery(BaseSchema):
    """`since` / `until` of GET .../stats (default: the last 28 days)."""

    since = UTCDateTime(load_default=None)
    until = UTCDateTime(load_default=None)


class EndpointStats(BaseSchema):
    """How many messages are in each status at an endpoint."""

    success = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    sending = fields.Integer(required=True)
    fail = fields.Integer(required=True)
    canceled = fields.Integer(required=True)


ListResponseMessageAttemptOut = list_response(MessageAttemptOut, "ListResponseMessageAttemptOut")
ListResponseEndpointMessageOut = list_response(EndpointMessageOut, "ListResponseEndpointMessageOut")
ListResponseMessageEndpointOut = list_response(MessageEndpointOut, "ListResponseMessageEndpointOut")
