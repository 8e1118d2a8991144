"""AppPortalToken: an application-scoped token (`appsk_…`) for the consumer app portal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import UTCDateTime, db
from api.ids import new_id
from api.models.common import IdString, json_column, utcnow


class AppPortalToken(db.Model):  # type: ignore[name-defined]
    """A portal token's hash, its application, what it may do and until when.

    Revoking (expire-all) moves `expires_at` forward to the revocation time; logout deletes
    the row. The plain token is shown once, in the app-portal-access answer.
    """

    __tablename__ = "app_portal_token"

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("apptok"))
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False
    )
    app_id: Mapped[str] = mapped_column(
        ForeignKey("application.id", ondelete="CASCADE"), index=True, nullable=False
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    capabilities: Mapped[list[str]] = json_column(default=list, nullable=False)
    feature_flags: Mapped[list[str]] = json_column(default=list, nullable=False)
    session_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
