"""Application: a consumer of webhooks (one per customer of the sending product)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint, false
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
    # the org's operational-webhook application (api/services/operational_webhooks.py): never
    # listed by GET /api/v1/app
    internal: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )


class AppRouting(db.Model):  # type: ignore[name-defined]
    """An application's routing version: bumped by database triggers (migration
    a7c1d2e3f4b5) whenever one of its endpoints is created, deleted, or changes a routing
    column (disabled, event_types, channels). Ingest caches an app's routing per process and
    stores a message only while this version is the one it routed with (api/services/routing.py).

    Its own table, not a column of application: bumping it locks this row, not the app's, so
    an endpoint change never waits in a circle with an application's delete. No foreign key
    for the same reason (a deleted application may leave its row behind: harmless)."""

    __tablename__ = "app_routing"

    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
