"""Column helpers shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime

JSONType = JSON().with_variant(JSONB(), "postgresql")
# Ids sort by creation time only in byte order: on PostgreSQL they are COLLATE "C" whatever the
# database's locale (an en_US collation would put "a" before "B" and break time order).
IdString = String(40).with_variant(String(40, collation="C"), "postgresql")


def utcnow() -> datetime:
    """Now, timezone-aware UTC (freezegun-friendly)."""
    return datetime.now(UTC)


class Timestamps:
    """created_at / updated_at columns."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


def json_column(default: Any = None, nullable: bool = True, name: str | None = None) -> Any:
    """A JSON column (JSONB on PostgreSQL), optionally under another column name."""
    if name:
        return mapped_column(name, JSONType, default=default, nullable=nullable)
    return mapped_column(JSONType, default=default, nullable=nullable)
