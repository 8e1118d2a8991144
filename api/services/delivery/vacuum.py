"""Keeping the queue table lean: `delivery` rows change state on every claim and record, and
each change leaves a dead row version and dead index entries at the head of the claim's
index until a VACUUM. PostgreSQL's autovacuum does this where it is on (the migration tunes
it for this table); where it is off, the claim slows with every delivery (measured: 230 → 29
deliveries/s over a 100,000-message backlog). The scheduler's `herald.vacuum_deliveries`
runs `vacuum_if_needed` every few seconds: a VACUUM once the dead versions outnumber the
threshold, never two at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from api.extensions import db

logger = logging.getLogger(__name__)

MIN_DEAD = 5000  # dead row versions before a VACUUM is worth it
DEAD_SHARE = 0.2  # ... or this share of the live rows, whichever is more

_DEAD = """SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables
 WHERE relid = 'delivery'::regclass"""


def vacuum_if_needed() -> bool:
    """VACUUM (ANALYZE) the delivery table when its dead versions pass the threshold; True
    when it ran. PostgreSQL only; a VACUUM already running elsewhere is left to finish."""
    if db.engine.dialect.name != "postgresql":
        return False
    with db.engine.connect() as connection:
        raw: Any = connection.connection.driver_connection
        raw.autocommit = True  # VACUUM cannot run inside a transaction
        try:
            return _vacuum(raw)
        finally:
            raw.autocommit = False


def _vacuum(raw: Any) -> bool:
    with raw.cursor() as cursor:
        cursor.execute(_DEAD)
        dead, live = cursor.fetchone() or (0, 0)
        if dead < max(MIN_DEAD, DEAD_SHARE * live):
            return False
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('herald.vacuum_deliveries'))")
        if not cursor.fetchone()[0]:
            return False  # another process is at it
        try:
            started = time.monotonic()
            cursor.execute("VACUUM (ANALYZE) delivery")
            elapsed = int((time.monotonic() - started) * 1000)
            logger.info("delivery.vacuumed", extra={"dead": dead, "ms": elapsed})
        finally:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('herald.vacuum_deliveries'))")
    return True
