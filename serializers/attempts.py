"""Attempt-log schemas: MessageAttemptOut, per-destination status, RecoverIn/Out, ReplayIn/Out,
counts and stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, missing, validate, validates_schema

from serializers.base import (
    UID_PATTERN,
    BaseSchema,
    FullMatch,
    ListQuery,
    UTCDateTime,
    list_response,
)
from serializers.messages import MessageFilterFields, MessageOut

STATUS_TEXT = {0: "success", 1: "pending", 2: "fail", 3: "sending", 4: "canceled"}
STATUS_CODE_CLASSES = (0, 100, 200, 300, 400, 500)
RECOVER_MAX_WINDOW = timedelta(days=14, minutes=5)
_MSG_WITHOUT_CONTENT = MessageOut(with_content=False)  # an attempt's `msg` never has a payload
SUCCESS, CANCELED = 0, 4


def shown_status(status: int, expanded_statuses: bool) -> int:
    """The status as the caller sees it: with `expanded_statuses=false` (Svix's default, for
    clients that predate it) Canceled (4) reads as Success (0)."""
    return SUCCESS if not expanded_statuses and int(status) == CANCELED else int(status)


class ShownStatus:
    """`status` / `statusText` dumped through shown_status; `expanded_statuses` is set per
    request by the schemas that take the query parameter (True: the stored status)."""

    expanded_statuses = True

    def _dump_status(self, obj: Any) -> int:
        return shown_status(obj.status, self.expanded_statuses)

    def _dump_status_text(self, obj: Any) -> str:
        return STATUS_TEXT[self._dump_status(obj)]


def _status_field() -> fields.Method:
    return fields.Method("_dump_status", required=True, metadata={"type": "integer"})


def _status_text_field() -> fields.Method:
    return fields.Method(
        "_dump_status_text", data_key="statusText", required=True, metadata={"type": "string"}
    )


class StatusFields(ShownStatus, BaseSchema):
    """`status`, `statusText` and `nextAttempt` of a message at one destination."""

    status = _status_field()
    status_text = _status_text_field()
    next_attempt = UTCDateTime(data_key="nextAttempt", allow_none=True)


class MessageAttemptOut(ShownStatus, BaseSchema):
    """One attempt; `response` is `"{}"` without content; `msg` only with `with_msg=true`."""

    id = fields.String(required=True)
    msg_id = fields.String(data_key="msgId", required=True)
    endpoint_id = fields.String(data_key="endpointId", required=True)
    url = fields.String(required=True)
    response = fields.Method("_dump_response", required=True, metadata={"type": "string"})
    response_status_code = fields.Integer(data_key="responseStatusCode", required=True)
    response_duration_ms = fields.Integer(data_key="responseDurationMs", required=True)
    status = _status_field()
    status_text = _status_text_field()
    trigger_type = fields.Integer(data_key="triggerType", required=True)
    timestamp = UTCDateTime(attribute="created_at", required=True)
    msg = fields.Method("_dump_msg", metadata={"type": "object"})

    def __init__(
        self,
        *,
        with_content: bool = True,
        messages: dict[str, Any] | None = None,
        expanded_statuses: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.with_content = with_content
        self.messages = messages  # msg_id -> Message, given only for `with_msg=true`
        self.expanded_statuses = expanded_statuses

    def _dump_response(self, attempt: Any) -> str:
        return str(attempt.response) if self.with_content else "{}"

    def _dump_msg(self, attempt: Any) -> Any:
        if self.messages is None or attempt.msg_id not in self.messages:
            return missing
        return _MSG_WITHOUT_CONTENT.dump(self.messages[attempt.msg_id])


class EndpointMessageOut(MessageOut, StatusFields):
    """A message sent to one endpoint, with its status there (list_attempted_messages)."""

    def __init__(self, *, expanded_statuses: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expanded_statuses = expanded_statuses


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


def status_filter() -> fields.Integer:
    """`status`: a MessageStatus (0-4), compared with the stored status."""
    return fields.Integer(load_default=None, validate=validate.OneOf(sorted(STATUS_TEXT)))


def status_code_class_filter() -> fields.Integer:
    """`status_code_class`: 0 (no response), 100, 200, ... 500."""
    return fields.Integer(load_default=None, validate=validate.OneOf(STATUS_CODE_CLASSES))


def expanded_statuses_field() -> fields.Boolean:
    """`expanded_statuses` (default false: Canceled (4) reads as Success (0))."""
    return fields.Boolean(load_default=False)


class MessageFilterQuery(ListQuery, MessageFilterFields):
    """Filters shared by the attempt lists: time window, message channel/tag/event types."""

    class Meta(ListQuery.Meta):
        exclude = ("order",)

    status = status_filter()
    with_content = fields.Boolean(load_default=True)
    expanded_statuses = expanded_statuses_field()


class AttemptListQuery(MessageFilterQuery):
    """GET .../attempt/endpoint/{endpoint_id}: plus `status_code_class` and `with_msg`."""

    status_code_class = status_code_class_filter()
    with_msg = fields.Boolean(load_default=False)


class AttemptByMsgQuery(AttemptListQuery):
    """GET .../attempt/msg/{msg_id}: plus `endpoint_id` (id or uid)."""

    endpoint_id = fields.String(
        load_default=None, validate=[validate.Length(1, 256), FullMatch(UID_PATTERN)]
    )


class AttemptGetQuery(BaseSchema):
    """GET .../msg/{msg_id}/attempt/{attempt_id}: `expanded_statuses`."""

    expanded_statuses = expanded_statuses_field()


class AttemptCountQuery(MessageFilterFields):
    """GET .../attempt/endpoint/{endpoint_id}/count: the list's filters, without paging."""

    status = status_filter()
    status_code_class = status_code_class_filter()


class CountOut(BaseSchema):
    """How many attempts match; `approximated` when the count stopped at its ceiling."""

    count = fields.Integer(required=True)
    approximated = fields.Boolean(required=True)


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


class ReplayIn(BaseSchema):
    """`since` (required) and `until` (default now): the messages' creation window."""

    since = UTCDateTime(required=True)
    until = UTCDateTime(allow_none=True, load_default=None)


class ReplayOut(RecoverOut):
    """The `endpoint.replay` task started by a replay-missing."""


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


class AppAttemptStatsQuery(MessageFilterFields):
    """GET /app/{app_id}/stats/attempts: `since`, `until` (both required), `event_types`."""

    class Meta(MessageFilterFields.Meta):
        exclude = ("channel", "tag", "before", "after")

    since = UTCDateTime(required=True)
    until = UTCDateTime(required=True)


class AppAttemptEventTypeStats(BaseSchema):
    """Attempts of one event type: succeeded, failed, canceled."""

    success = fields.Integer(required=True)
    failure = fields.Integer(required=True)
    canceled = fields.Integer(required=True)


class AppAttemptStatsOut(BaseSchema):
    """An application's attempt counts in a window, in total and per event type (Svix spells
    these keys in snake_case)."""

    by_event_type = fields.Dict(
        keys=fields.String(), values=fields.Nested(AppAttemptEventTypeStats), required=True
    )
    total_success = fields.Integer(required=True)
    total_failure = fields.Integer(required=True)
    total_canceled = fields.Integer(required=True)
    since = UTCDateTime(required=True)
    until = UTCDateTime(required=True)


class MessageAttemptHeadersOut(BaseSchema):
    """GET .../attempt/{id}/headers: what the attempt sent (a sensitive header's value is
    withheld and its name listed in `sensitive`) and the response's headers as [name, value]
    pairs (null when no response came back, or for attempts logged before headers were)."""

    sent_headers = fields.Function(
        lambda a: {k: v for k, v in (a.sent_headers or {}).items() if v is not None},
        data_key="sentHeaders",
        required=True,
        metadata={"type": "object", "additionalProperties": {"type": "string"}},
    )
    response_headers = fields.List(
        fields.List(fields.String(), validate=validate.Length(2, 2)),
        data_key="responseHeaders",
        allow_none=True,
    )
    sensitive = fields.Function(
        lambda a: sorted(k for k, v in (a.sent_headers or {}).items() if v is None),
        required=True,
        metadata={"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    )


ListResponseMessageAttemptOut = list_response(MessageAttemptOut, "ListResponseMessageAttemptOut")
ListResponseEndpointMessageOut = list_response(EndpointMessageOut, "ListResponseEndpointMessageOut")
ListResponseMessageEndpointOut = list_response(MessageEndpointOut, "ListResponseMessageEndpointOut")
