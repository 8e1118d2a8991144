"""Hot-path statements run with psycopg directly on the session's own connection.

SQLAlchemy's per-execution work (parameter processing, result metadata, transaction
bookkeeping) was a tenth or more of the CPU of the ingest and delivery hot paths (py-spy on
bench/ingest.py and bench/delivery.py). These statements are built once, with SQLAlchemy
where they can be, and executed here. PostgreSQL only.

A statement run while no transaction is open on the connection runs in autocommit (it is
atomic on its own): no BEGIN and COMMIT round trips. Inside a transaction (a caller's, or a
test's outer one) it joins it. psycopg errors come back as SQLAlchemy's, so callers handle
one kind.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from api.extensions import db

_DIALECT = pg_dialect.dialect()
_BEGIN = text("SELECT 1")  # the driver opens the transaction before its first statement


def compiled(statement: ClauseElement) -> str:
    """A SQLAlchemy statement as psycopg SQL with %(name)s placeholders."""
    return str(statement.compile(dialect=_DIALECT))


def execute(sql: str, params: dict[str, Any]) -> list[Any]:
    """Run one statement on the session's connection; its rows as named tuples."""
    connection = db.session.connection()
    driver: Any = connection.connection.driver_connection
    solo = driver.info.transaction_status == TransactionStatus.IDLE
    if solo:
        driver.autocommit = True
    try:
        with driver.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as error:
        lost = connection.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
        if lost:  # as SQLAlchemy does: the pool must not hand this connection out again
            connection.invalidate()
        raise DBAPIError.instance(
            sql, params, error, psycopg.Error, connection_invalidated=lost
        ) from None
    finally:
        if solo and not driver.closed and not connection.invalidated:
            driver.autocommit = False


def begin() -> None:
    """Open a transaction on the session's connection, so the statements run here next join
    it and commit with what else it holds, instead of each running alone in autocommit."""
    db.session.execute(_BEGIN)


def commit() -> None:
    """Commit the session's work, if it did any: after statements run here alone (in
    autocommit) there is nothing to commit, and the connection stays with the session for
    the next one instead of a pool round trip (a delivery loop's claims and records)."""
    if db.engine.dialect.name != "postgresql":
        db.session.commit()
        return
    connection: Any = db.session.connection().connection.driver_connection
    if connection.info.transaction_status != TransactionStatus.IDLE:
        db.session.commit()
