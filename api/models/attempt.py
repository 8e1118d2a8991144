"""MessageAttempt: one HTTP try of a delivery, with what the endpoint answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, json_column, utcnow


class MessageAttempt(db.Model):  # type: ignore[name-defined]
    """An attempt row; `response` holds at most 20,000 bytes (base64 when not UTF-8)."""

    __tablename__ = "message_attempt"
    __table_args__ = (
        Index("ix_message_attempt_msg_id_id", "msg_id", "id"),
        Index("ix_message_attempt_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("atmpt"))
    msg_id: Mapped[str] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), nullable=False
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("endpoint.id", ondelete="CASCADE"), nullable=False
    )
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("delivery.id", ondelete="CASCADE"), index=True, nullable=False
    )
    app_id: Mapped[str] = mapped_column(IdString, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    response: Mapped[str] = mapped_column(Text, default="", nullable=False)
    response_status_code: Mapped[int] = mapped_column(SmallInteger, default=0, nullable=False)
    response_duration_ms: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    status: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    trigger_type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # the headers sent, {name: value}; a sensitive one's value is withheld as null
    sent_headers: Mapped[dict[str, str | None] | None] = json_column()
    # the response's headers as [name, value] pairs (printable ASCII, bounded); None: no response
    response_headers: Mapped[list[list[str]] | None] = json_column()
