"""ApiToken: an opaque bearer token, stored only as its SHA-256 hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, utcnow


class ApiToken(db.Model):  # type: ignore[name-defined]
    """A token's hash and the org it acts for; the plain token is shown once at creation."""

    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("tok"))
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
