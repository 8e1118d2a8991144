"""The queue table is vacuumed once dead row versions pile up (PostgreSQL with or without
autovacuum), and left alone below the threshold."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import text, update

from api.extensions import db
from api.models import Delivery
from api.models.common import utcnow
from api.services.delivery import vacuum
from tests.api.factories import seed

pytestmark = [pytest.mark.postgresql_only, pytest.mark.usefixtures("committed_db")]


def _dead() -> int:
    db.session.execute(text("SELECT pg_stat_force_next_flush()"))
    found = db.session.execute(
        text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'delivery'::regclass")
    ).scalar_one()
    db.session.rollback()
    return int(found)


def test_vacuum_runs_past_the_threshold_only(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vacuum, "MIN_DEAD", 200)
    monkeypatch.setattr(vacuum, "DEAD_SHARE", 0.0)
    with app.app_context():
        seed("http://127.0.0.1:9/")
        vacuum.vacuum_if_needed()  # whatever earlier tests left
        assert _dead() < 200 and vacuum.vacuum_if_needed() is False  # below: nothing to do
        for _ in range(300):  # 300 dead versions of one row (an indexed column: no HOT update)
            db.session.execute(update(Delivery).values(next_attempt_at=utcnow()))  # not HOT
            db.session.commit()
        deadline = time.monotonic() + 10
        while _dead() < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _dead() >= 200
        assert vacuum.vacuum_if_needed() is True
        assert _dead() < 200
        assert vacuum.vacuum_if_needed() is False
