"""Message: an event sent once to an application; its payload is stored as the exact body."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, json_column, utcnow


class Message(db.Model):  # type: ignore[name-defined]
    """A message; `payload` is the compact JSON text that is sent and signed (None once purged)."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("app_id", "event_id"),
        Index("ix_message_app_id_id", "app_id", "id"),
    )

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("msg"))
    app_id: Mapped[str] = mapped_column(
        ForeignKey("application.id", ondelete="CASCADE"), nullable=False
    )
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False
    )
    event_id: Mapped[str | None] = mapped_column(String(256))
    event_type: Mapped[str] = mapped_column(String(256), nullable=False)
    payload: Mapped[str | None] = mapped_column(Text)
    channels: Mapped[list[str] | None] = json_column()
    tags: Mapped[list[str] | None] = json_column()
    expiration: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # a raw payload (transformationsParams.rawPayload): `payload` is that text, sent as it is
    # with `content_type`; JSON messages have raw False and content_type None
    raw: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )
    content_type: Mapped[str | None] = mapped_column(String(256))
    deliver_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # deliverAt, when given
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
