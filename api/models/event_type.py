"""EventType: a named kind of message (identified by name in the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import db
from api.ids import new_id
from api.models.common import IdString, Timestamps, json_column


class EventType(Timestamps, db.Model):  # type: ignore[name-defined]
    """An event type; delete archives it, `expunge` removes it."""

    __tablename__ = "event_type"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("evtype"))
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    deprecated: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    feature_flag: Mapped[str | None] = mapped_column(String(256))
    group_name: Mapped[str | None] = mapped_column(String(256))
    schemas: Mapped[dict[str, Any] | None] = json_column()
    # seconds before each retry of this type's deliveries (PUT .../retry-schedule), overriding
    # HERALD_RETRY_SCHEDULE; None = the default
    retry_schedule: Mapped[list[float] | None] = json_column()
