"""Endpoint: a URL of an application that receives signed deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, Timestamps, json_column


class Endpoint(Timestamps, db.Model):  # type: ignore[name-defined]
    """An endpoint with its filters, signing keys (current + old with expiry) and headers."""

    __tablename__ = "endpoint"
    __table_args__ = (UniqueConstraint("app_id", "uid"),)

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("ep"))
    app_id: Mapped[str] = mapped_column(
        ForeignKey("application.id", ondelete="CASCADE"), index=True, nullable=False
    )
    uid: Mapped[str | None] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    throttle_rate: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    event_types: Mapped[list[str] | None] = json_column()
    channels: Mapped[list[str] | None] = json_column()
    metadata_: Mapped[dict[str, Any]] = json_column(default=dict, nullable=False, name="metadata")
    secret: Mapped[str] = mapped_column(String(128), nullable=False)
    # [{"key": "whsec_...", "expiration": "<iso8601>"}], newest first
    old_keys: Mapped[list[dict[str, str]]] = json_column(default=list, nullable=False)
    headers: Mapped[dict[str, str]] = json_column(default=dict, nullable=False)
    # start of the current run of failures; reset by any success (auto-disable clock)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
