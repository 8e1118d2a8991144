"""Extension singletons, bound to an app in create_app (no app is created on import)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, TypeDecorator, event, exc
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention Alembic can diff."""

    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
openapi = Api()


def init_redis(app: Flask) -> None:
    """Create the app's Redis client (a server or a Sentinel group's master: api/redis_url.py)
    with bounded timeouts (a hung Redis must not hang us)."""
    from api import redis_url

    app.extensions["redis"] = redis_url.client(app.config["REDIS_URL"])


def get_redis() -> redis.Redis:
    """The current app's Redis client."""
    client: redis.Redis = current_app.extensions["redis"]
    return client


def init_db_ping(app: Flask) -> None:
    """Ping a pooled connection on checkout only when it sat idle for DB_PING_AFTER_IDLE s.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip per transaction on the
    ingest and delivery hot paths. A connection broken by a database restart is one that sat
    in the pool meanwhile, so pinging the idle ones keeps the protection (a failed ping makes
    the pool reconnect, the caller never sees it). 0 pings on every checkout.
    """
    threshold = float(app.config["DB_PING_AFTER_IDLE"])
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        init_sqlite(engine)
        return

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["herald_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("herald_idle_since")
        if idle_since is None or time.monotonic() - idle_since < threshold:
            return  # new (just connected) or used moments ago
        try:
            ok = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError() from error  # the pool reconnects and retries
        if not ok:
            raise exc.DisconnectionError()


def init_sqlite(engine: Any) -> None:
    """SQLite (the quickstart) with real transactions, enforced foreign keys and WAL.

    pysqlite opens transactions itself, late and without SAVEPOINT support; SQLAlchemy's
    recipe hands BEGIN to SQLAlchemy so a rollback to a savepoint is one. Foreign keys are
    off in SQLite unless asked, and WAL lets the web, worker and scheduler processes read
    while one writes; busy_timeout makes a writer wait for another instead of failing.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")
