"""Create the database a URL names when it is missing (`herald db upgrade`, `herald devserver`).

PostgreSQL: `CREATE DATABASE`, issued from the server's `postgres` maintenance database with
the URL's own credentials. SQLite: the file's directory (SQLite creates the file itself).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

MAINTENANCE_DATABASES = ("postgres", "template1")


class DatabaseUnreachable(Exception):
    """Neither the database nor a maintenance database of its server accepts a connection."""


def ensure_database(url: str) -> str | None:
    """Create the database of `url` if it does not exist; returns what was created, if anything."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _ensure_sqlite_directory(parsed)
    if backend != "postgresql" or not parsed.database:
        return None
    try:
        psycopg.connect(_conninfo(parsed, parsed.database), connect_timeout=10).close()
        return None
    except psycopg.OperationalError as exc:
        # "does not exist", or the server is down, or auth failed: ask the server which
        original = exc
    for maintenance in MAINTENANCE_DATABASES:
        try:
            conn = psycopg.connect(
                _conninfo(parsed, maintenance), autocommit=True, connect_timeout=10
            )
        except psycopg.OperationalError:
            continue
        with conn:
            if _database_exists(conn, parsed.database):
                raise DatabaseUnreachable(str(original).strip()) from original
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parsed.database)))
            except psycopg.errors.DuplicateDatabase:
                return None  # created meanwhile by a concurrent `db upgrade`
        return f"database {parsed.database}"
    raise DatabaseUnreachable(str(original).strip()) from original


def _database_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether the server has a database of that name."""
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _conninfo(parsed: URL, database: str) -> str:
    """A libpq URL for `database` on the server and with the credentials of `parsed`."""
    target = parsed.set(drivername="postgresql", database=database)
    return target.render_as_string(hide_password=False)


def _ensure_sqlite_directory(parsed: URL) -> str | None:
    """Make the directory of a SQLite file; SQLite creates the file on first connect."""
    if not parsed.database or parsed.database == ":memory:":
        return None
    directory = Path(parsed.database).parent
    if directory.is_dir():
        return None
    directory.mkdir(parents=True, exist_ok=True)
    return f"directory {directory}"
