"""BackgroundTask: a long-running operation such as endpoint recovery (`qtask_...`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import db
from api.ids import new_id
from api.models.common import IdString, Timestamps, json_column


class BackgroundTask(Timestamps, db.Model):  # type: ignore[name-defined]
    """A queued task with its status: running | finished | failed."""

    __tablename__ = "background_task"

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("qtask"))
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False
    )
    task: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="running", nullable=False)
    data: Mapped[dict[str, Any]] = json_column(default=dict, nullable=False)
