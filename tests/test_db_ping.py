"""Pooled connections are pinged on checkout only after sitting idle (DB_PING_AFTER_IDLE)."""

from __future__ import annotations

import time

import psycopg
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from api import create_app
from api.extensions import db
from tests.conftest import DATABASE_URL, test_overrides


def _backend_pid() -> int:
    pid = int(db.session.execute(text("SELECT pg_backend_pid()")).scalar_one())
    db.session.commit()  # back to the pool
    return pid


def _kill(pid: int) -> None:
    """Terminate a pooled connection's server process, as a database restart does."""
    url = make_url(DATABASE_URL).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _single_connection_app(ping_after: float) -> Flask:
    return create_app(
        test_overrides(DB_PING_AFTER_IDLE=ping_after, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0)
    )


def test_idle_connection_broken_meanwhile_is_replaced_unseen(app: Flask) -> None:
    herald = _single_connection_app(0.05)
    with herald.app_context():
        first = _backend_pid()
        db.session.remove()
        _kill(first)
        time.sleep(0.1)  # idle longer than the threshold: the checkout pings, then reconnects
        assert _backend_pid() != first
        db.session.remove()
        db.engine.dispose()


def test_recently_used_connection_is_not_pinged(app: Flask) -> None:
    herald = _single_connection_app(60)
    with herald.app_context():
        first = _backend_pid()
        db.session.remove()
        _kill(first)
        time.sleep(0.1)
        # no ping within the threshold: the broken connection is handed out, the query fails
        with pytest.raises(OperationalError):
            _backend_pid()
        db.session.remove()
        assert _backend_pid() != first  # the pool dropped it: the next checkout reconnects
        db.session.remove()
        db.engine.dispose()
