"""Background-task schemas: BackgroundTaskOut, its list query, and the started-task outputs."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from serializers.attempts import RecoverOut
from serializers.base import BaseSchema, ListQuery, UTCDateTime, list_response

TASK_STATUSES = ("running", "finished", "failed")
TASK_TYPES = (
    "endpoint.replay",
    "endpoint.recover",
    "application.stats",
    "message.broadcast",
    "sdk.generate",
    "event-type.aggregate",
    "application.purge_content",
    "endpoint.bulk-replay",
)
# What a task's stored data shows callers, under Svix's names; the rest (the window, the
# endpoint, progress) is the worker's own bookkeeping.
PUBLIC_DATA = {"resent": "messagesSent", "purged": "messagesPurged"}


class BackgroundTaskOut(BaseSchema):
    """A background task: `data` holds its counts once it has some (`messagesSent`, ...)."""

    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(TASK_STATUSES))
    task = fields.String(required=True, validate=validate.OneOf(TASK_TYPES))
    data = fields.Method("_dump_data", required=True, metadata={"type": "object"})
    updated_at = UTCDateTime(data_key="updatedAt", required=True)

    def _dump_data(self, task: Any) -> dict[str, Any]:
        stored = task.data or {}
        return {public: stored[key] for key, public in PUBLIC_DATA.items() if key in stored}


class BackgroundTaskListQuery(ListQuery):
    """GET /background-task: `status`, `task`, plus paging (newest first unless ascending)."""

    status = fields.String(load_default=None, validate=validate.OneOf(TASK_STATUSES))
    task = fields.String(load_default=None, validate=validate.OneOf(TASK_TYPES))


class ExpungeAllContentsOut(RecoverOut):
    """The `application.purge_content` task started by expunge-all-contents."""


ListResponseBackgroundTaskOut = list_response(BackgroundTaskOut, "ListResponseBackgroundTaskOut")
