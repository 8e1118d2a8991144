"""The transactional harness: an API call that rolls back keeps the test's earlier rows."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select, text

from api.extensions import db
from api.models import Organization
from api.services import tokens


def test_rollback_inside_call_keeps_rows_created_before(db_session: object) -> None:
    db.session.add(Organization(name="kept"))
    db.session.commit()  # a SAVEPOINT release inside the test's outer transaction
    db.session.add(Organization(name="kept"))  # violates the unique name
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()  # what a failing API call does
    names = db.session.scalars(select(Organization.name)).all()
    assert names == ["kept"]


def test_rows_from_previous_test_are_gone(db_session: object) -> None:
    assert db.session.scalars(select(Organization).where(Organization.name == "kept")).all() == []


def test_api_call_rollback_keeps_test_rows(
    app: Flask, db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens.create_token("before-call")

    def failing_check() -> dict[str, str]:
        db.session.add(Organization(name="inside-call"))
        db.session.flush()
        try:
            db.session.execute(text("SELECT * FROM no_such_table"))
        except Exception:
            db.session.rollback()  # the request's own rollback
        return {}

    monkeypatch.setattr("api.blueprints.health.check_dependencies", failing_check)
    assert app.test_client().get("/api/v1/health").status_code == 204
    names = set(db.session.scalars(select(Organization.name)))
    assert "before-call" in names and "inside-call" not in names
