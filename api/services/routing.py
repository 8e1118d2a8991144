"""Ingest routing: which enabled endpoints of an application a message goes to, cached per
process, and the message stored in the same statement that proves the cache still holds.

An application's routing (its id and its enabled endpoints' filter columns) is read once and
kept with the application's routing version (`app_routing.version`, bumped by database
triggers on every endpoint write that can change routing, whoever makes it: see migration
a7c1d2e3f4b5). A message is then stored by one statement that inserts it only while that
version is still current; when it is not (an endpoint changed since, anywhere), nothing is
stored, the routing is read again and the message stored with it. A cached route is never
trusted, only checked, so there is nothing to invalidate across processes or hosts and
nothing to expire: an unchanged application costs one write per message and no read.

The two hot statements are written here once for each dialect, side by side:
- PostgreSQL: one statement (message and deliveries in data-modifying CTEs, conditioned on
  the version), in autocommit: one round trip.
- SQLite: the message INSERT first (it takes the database's write lock, so nothing can change
  the endpoints until commit), then the version check, then the deliveries, in one transaction.
tests/services/test_routing.py runs both on the same cases.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import and_, bindparam, func, insert, literal_column, or_, select

from api.extensions import db
from api.models import (
    Application,
    AppRouting,
    Delivery,
    Endpoint,
    Message,
    MessageStatus,
    TriggerType,
)
from api.services import driver


@dataclass(frozen=True)
class Route:
    """An application's routing as read at one version."""

    app_id: str
    version: int
    endpoints: tuple[Any, ...]  # rows with id, disabled, event_types, channels


class RouteCache:
    """(org id, app id or uid as the caller named it) → Route, least recently used dropped
    beyond `size`. Shared by a process's threads and greenlets."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.routes: OrderedDict[tuple[str, str], Route] = OrderedDict()

    def get(self, org_id: str, key: str) -> Route | None:
        with self.lock:
            route = self.routes.get((org_id, key))
            if route is not None:
                self.routes.move_to_end((org_id, key))
            return route

    def put(self, org_id: str, key: str, route: Route) -> None:
        with self.lock:
            self.routes[(org_id, key)] = route
            self.routes.move_to_end((org_id, key))
            while len(self.routes) > self.size:
                self.routes.popitem(last=False)

    def drop(self, org_id: str, key: str) -> None:
        with self.lock:
            self.routes.pop((org_id, key), None)


CACHE = RouteCache()

_APPS, _ENDPOINTS, _ROUTING = (
    Application.__table__,
    Endpoint.__table__,
    AppRouting.__table__,
)
_CURRENT_VERSION = func.coalesce(
    select(_ROUTING.c.version).where(_ROUTING.c.app_id == _APPS.c.id).scalar_subquery(),
    literal_column("0"),
)
# The app (by id or uid; an exact id match wins, as lookup.find_application), its routing
# version and its enabled endpoints' routing columns: one statement, so one snapshot.
_READ = (
    select(
        _APPS.c.id.label("app_id"),
        _CURRENT_VERSION.label("version"),
        _ENDPOINTS.c.id,
        _ENDPOINTS.c.disabled,
        _ENDPOINTS.c.event_types,
        _ENDPOINTS.c.channels,
    )
    .select_from(
        _APPS.outerjoin(
            _ENDPOINTS,
            and_(_ENDPOINTS.c.app_id == _APPS.c.id, _ENDPOINTS.c.disabled.is_(False)),
        )
    )
    .where(
        _APPS.c.org_id == bindparam("org_id"),
        or_(_APPS.c.id == bindparam("key"), _APPS.c.uid == bindparam("key")),
    )
    .order_by((_APPS.c.id == bindparam("key")).desc())
)
_READ_PG = driver.compiled(_READ)
# The route still holds: the app exists, is still the one the caller's key names, and its
# routing version is the one read.
_STILL_CURRENT = select(_APPS.c.id).where(
    _APPS.c.id == bindparam("app_id"),
    _APPS.c.org_id == bindparam("org_id"),
    or_(_APPS.c.id == bindparam("key"), _APPS.c.uid == bindparam("key")),
    _CURRENT_VERSION == bindparam("version"),
)

_STORE_PG = f"""
WITH app AS ({driver.compiled(_STILL_CURRENT)}),
msg AS (
  INSERT INTO message (id, app_id, org_id, event_id, event_type, payload, channels, tags,
                       expiration, raw, content_type, deliver_at, created_at)
  SELECT %(id)s, app.id, %(org_id)s, %(event_id)s, %(event_type)s, %(payload)s,
         %(channels)s, %(tags)s, %(expiration)s, %(raw)s, %(content_type)s, %(deliver_at)s,
         %(created_at)s
    FROM app
  RETURNING id),
delivery_rows AS (
  INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, trigger_type, attempt_count,
                        next_attempt_at, created_at, updated_at)
  SELECT d.id, msg.id, d.endpoint_id, %(app_id)s, %(status)s, %(trigger_type)s, 0, %(due_at)s,
         %(created_at)s, %(created_at)s
    FROM msg, unnest(CAST(%(delivery_ids)s AS text[]), CAST(%(endpoint_ids)s AS text[]))
         AS d(id, endpoint_id)
  RETURNING 1)
SELECT count(*) AS stored FROM msg
"""
_INSERT_MESSAGE = insert(Message.__table__)
_INSERT_DELIVERIES = insert(Delivery.__table__)


def read(org_id: str, key: str) -> Route | None:
    """The application's current routing (None: no such app of the org), cached."""
    if "\x00" in key:  # PostgreSQL rejects NUL bytes: no such app
        return None
    params = {"org_id": org_id, "key": key}
    if db.engine.dialect.name == "postgresql":
        rows: Any = driver.execute(_READ_PG, params)
    else:
        rows = db.session.connection().execute(_READ, params).all()
        # End the read transaction: in WAL mode a write in a transaction whose snapshot is
        # older than another writer's commit fails at once ("database is locked").
        db.session.rollback()
    app_id: str | None = None
    version = 0
    endpoints: list[Any] = []
    for row in rows:
        if app_id is None:
            app_id, version = row.app_id, int(row.version)
        if row.app_id == app_id and row.id is not None:
            endpoints.append(row)
    if app_id is None:
        CACHE.drop(org_id, key)
        return None
    route = Route(app_id, version, tuple(endpoints))
    CACHE.put(org_id, key, route)
    return route


def cached(org_id: str, key: str) -> Route | None:
    """The cached route for the caller's key, or the current one read now.

    SQLite: first ends the session's read transaction (the token lookup's, say), so that the
    ingest's first write starts a new one rather than failing on an old snapshot (read)."""
    if db.engine.dialect.name != "postgresql":
        db.session.commit()
    return CACHE.get(org_id, key) or read(org_id, key)


def store(key: str, route: Route, row: dict[str, Any], deliveries: list[dict[str, Any]]) -> bool:
    """Insert the message row and its delivery rows if `route` is still the application's
    current routing; False (nothing stored, the transaction rolled back) when it is not.
    Commits on success. Raises IntegrityError as the INSERTs do (eventId taken, a race)."""
    check = {"app_id": route.app_id, "org_id": row["org_id"], "key": key, "version": route.version}
    if db.engine.dialect.name == "postgresql":
        first = deliveries[0] if deliveries else {}
        result = driver.execute(
            _STORE_PG,
            {
                **row,
                **check,
                "channels": _jsonb(row["channels"]),
                "tags": _jsonb(row["tags"]),
                "status": first.get("status", MessageStatus.SENDING),
                "trigger_type": first.get("trigger_type", TriggerType.SCHEDULED),
                "due_at": first.get("next_attempt_at", row["created_at"]),
                "delivery_ids": [d["id"] for d in deliveries],
                "endpoint_ids": [d["endpoint_id"] for d in deliveries],
            },
        )
        stored = bool(result[0].stored)
    else:
        connection = db.session.connection()
        connection.execute(_INSERT_MESSAGE, row)  # the write lock first: then nothing changes
        stored = connection.execute(_STILL_CURRENT, check).first() is not None
        if stored and deliveries:
            connection.execute(_INSERT_DELIVERIES, deliveries)
    if not stored:
        db.session.rollback()
        return False
    driver.commit()
    return True


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)
