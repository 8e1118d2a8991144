"""Application: a consumer of webhooks (one per customer of the sending product)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import db
from api.ids import new_id
from api.models.common import IdString, Timestamps, json_column


class Application(Timestamps, db.Model):  # type: ignore[name-defined]
    """An application; `uid` is an optional org-unique alias usable wherever the id is."""

    __tablename__ = "application"
    __table_args__ = (UniqueConstraint("org_id", "uid"),)

    id: Mapped[str] = mapped_column(IdString, primary_key=True, default=lambda: new_id("app"))
    org_id: Mapped[str] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, nullable=False
    )
    uid: Mapped[str | None] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    throttle_rate: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = json_column(default=dict, nullable=False, name="metadata")
