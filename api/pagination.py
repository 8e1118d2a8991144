"""Cursor pagination over an ordered id-like column, as Svix does it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from api.extensions import db


@dataclass
class Page:
    """One page: items plus the cursors of the ListResponse."""

    data: list[Any]
    iterator: str | None
    prev_iterator: str | None
    done: bool


def paginate(
    query: Select[Any],
    column: InstrumentedAttribute[Any],
    limit: int,
    iterator: str | None,
    descending: bool = False,
    key: Any = None,
) -> Page:
    """Fetch `limit` rows after (or, with a leading `-`, before) `iterator` in the given order.

    `key(row)` gives a row's cursor value (defaults to `row.id`); `done` is true when no more
    rows follow in the direction of travel.
    """
    key = key or (lambda row: row.id)
    backwards = bool(iterator and iterator.startswith("-"))
    cursor = iterator[1:] if iterator and backwards else iterator
    forward_desc = descending != backwards  # walking backwards flips the order
    if cursor:
        query = query.where(column < cursor if forward_desc else column > cursor)
    query = query.order_by(column.desc() if forward_desc else column.asc()).limit(limit + 1)
    rows = list(db.session.scalars(query))
    done = len(rows) <= limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    if not rows:
        return Page([], None, None, True)
    return Page(rows, key(rows[-1]), "-" + key(rows[0]), done)
