"""api/services/driver.py: autocommit when no transaction is open, joins one otherwise, and
errors come back as SQLAlchemy's (a lost connection invalidated)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from api import create_app
from api.extensions import db
from api.ids import new_id
from api.services import driver
from tests.conftest import DATABASE_URL, test_overrides

pytestmark = pytest.mark.postgresql_only  # the driver is psycopg's

INSERT_ORG = "INSERT INTO organization (id, name, created_at) VALUES (%(id)s, %(name)s, now())"


def _outside(sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run a query on a separate connection (what other sessions can see)."""
    url = make_url(DATABASE_URL).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _visible(name: str) -> bool:
    return bool(_outside("SELECT 1 FROM organization WHERE name = %s", name))


@pytest.fixture
def ctx(app: Flask, committed_db: None) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()


def test_with_no_transaction_open_the_statement_commits_by_itself(ctx: None) -> None:
    rows = driver.execute(INSERT_ORG + " RETURNING name", {"id": new_id("org"), "name": "solo"})
    assert [r.name for r in rows] == ["solo"]
    assert _visible("solo")  # before any commit: it ran in autocommit
    db.session.rollback()
    assert _visible("solo")
    # the connection is back to transactions: a normal SQLAlchemy write needs its commit
    db.session.execute(
        text("INSERT INTO organization (id, name, created_at) VALUES (:id, 'after', now())"),
        {"id": new_id("org")},
    )
    db.session.rollback()
    assert not _visible("after")


def test_inside_an_open_transaction_it_joins_it(ctx: None) -> None:
    db.session.execute(text("SELECT 1"))  # the session's transaction is open now
    driver.execute(INSERT_ORG, {"id": new_id("org"), "name": "joined"})
    assert not _visible("joined")
    db.session.rollback()
    assert not _visible("joined")


def test_integrity_error_is_sqlalchemys_with_the_driver_error(ctx: None) -> None:
    driver.execute(INSERT_ORG, {"id": new_id("org"), "name": "twice"})
    with pytest.raises(IntegrityError) as caught:
        driver.execute(INSERT_ORG, {"id": new_id("org"), "name": "twice"})
    assert isinstance(caught.value.orig, psycopg.errors.UniqueViolation)
    db.session.rollback()
    assert driver.execute("SELECT count(*) AS n FROM organization", {})[0].n == 1


def test_lost_connection_is_invalidated_and_replaced(app: Flask) -> None:
    herald = create_app(test_overrides(DB_PING_AFTER_IDLE=60, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0))
    with herald.app_context():
        (row,) = driver.execute("SELECT pg_backend_pid() AS pid", {})
        db.session.remove()
        _outside("SELECT pg_terminate_backend(%s)", row.pid)
        with pytest.raises(OperationalError) as caught:
            driver.execute("SELECT 1 AS one", {})
        assert caught.value.connection_invalidated
        db.session.remove()
        (again,) = driver.execute("SELECT pg_backend_pid() AS pid", {})
        assert again.pid != row.pid
        db.session.remove()
        db.engine.dispose()
