"""Organization: the tenant every other row belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, utcnow


class Organization(db.Model):  # type: ignore[name-defined]
    """A tenant; API tokens, applications and event types are scoped to one."""

    __tablename__ = "organization"

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("org"))
    name: Mapped[str] = mapped_column(String(256), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
