"""Background tasks (Svix v1): list and get the org's `qtask_…` tasks (recover, replay, purge)."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from api.auth import current_principal, require_auth
from api.services import background_tasks
from serializers.background_tasks import (
    BackgroundTaskListQuery,
    BackgroundTaskOut,
    ListResponseBackgroundTaskOut,
)

blp = Blueprint("background_tasks", __name__, url_prefix="/api/v1", description="Background tasks")


@blp.route("/background-task", methods=["GET"])
@require_auth
@blp.arguments(BackgroundTaskListQuery, location="query")
@blp.response(200, ListResponseBackgroundTaskOut)
def list_background_tasks(query: dict[str, Any]) -> Any:
    """The org's tasks of the last 90 days, newest first (filters `status`, `task`)."""
    return background_tasks.list_background_tasks(current_principal().org_id, **query)


@blp.route("/background-task/<task_id>", methods=["GET"])
@require_auth
@blp.response(200, BackgroundTaskOut)
def get_background_task(task_id: str) -> ResponseReturnValue:
    """One task by id, with its status and counts."""
    return background_tasks.get_background_task(current_principal().org_id, task_id)
