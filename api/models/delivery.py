"""Delivery: the work of getting one message to one endpoint, the source of truth for retries."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, Timestamps


class MessageStatus(enum.IntEnum):
    """Svix's MessageStatus values."""

    SUCCESS = 0
    PENDING = 1
    FAIL = 2
    SENDING = 3
    CANCELED = 4


class TriggerType(enum.IntEnum):
    """Svix's MessageAttemptTriggerType: automatic schedule or a manual resend/recover."""

    SCHEDULED = 0
    MANUAL = 1


_PENDING = text("next_attempt_at IS NOT NULL")
_LEASED = text("lease_token IS NOT NULL")


class Delivery(Timestamps, db.Model):  # type: ignore[name-defined]
    """One run of getting a message to an endpoint: the automatic one (SCHEDULED, with
    retries) and one per manual resend/recover (MANUAL, a single attempt).

    `next_attempt_at` is both the retry time and the lease: a claimed row gets
    `next_attempt_at = now + lease` and a fresh `lease_token`, so a worker that dies is
    replaced once the lease expires, and a stale execution cannot write (fenced on the token).
    `next_attempt_at` is NULL once the delivery is final (succeeded, failed for good, canceled).
    """

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_endpoint_id_msg_id", "endpoint_id", "msg_id"),
        # pending rows only (next_attempt_at is NULL once final): the claim's skip scan over
        # endpoints and per-endpoint due rows, the oldest due row, the running leases
        Index(
            "ix_delivery_due", "next_attempt_at", postgresql_where=_PENDING, sqlite_where=_PENDING
        ),
        Index(
            "ix_delivery_pending",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        Index("ix_delivery_leased", "endpoint_id", postgresql_where=_LEASED, sqlite_where=_LEASED),
    )

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("msgep"))
    msg_id: Mapped[str] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), nullable=False
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("endpoint.id", ondelete="CASCADE"), nullable=False
    )
    app_id: Mapped[str] = mapped_column(IdString, nullable=False, index=True)
    status: Mapped[int] = mapped_column(SmallInteger, default=MessageStatus.SENDING, nullable=False)
    trigger_type: Mapped[int] = mapped_column(
        SmallInteger, default=TriggerType.SCHEDULED, nullable=False
    )
    attempt_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(64))
