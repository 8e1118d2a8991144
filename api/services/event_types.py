"""Event types: create, list, get, upsert, patch, archive/expunge, retry schedules, and
existence checks.

`check_event_types(org_id, names)` is the check other services call (endpoint filters).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from api.errors import Conflict, NotFound, Unprocessable
from api.extensions import db
from api.models import EventType
from api.pagination import Page, paginate

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,256}$")
EXISTS_CODE = "event_type_exists"
EXISTS_DETAIL = "An event_type with this name already exists"
DEFAULTS: dict[str, Any] = {
    "archived": False,
    "deprecated": False,
    "schemas": None,
    "group_name": None,
    "feature_flag": None,
}


def _find(org_id: str, name: str) -> EventType | None:
    if not NAME_RE.fullmatch(name):  # never a stored name (and NUL would upset PostgreSQL)
        return None
    return db.session.scalar(
        select(EventType).where(EventType.org_id == org_id, EventType.name == name)
    )


def _apply(event_type: EventType, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key != "name":
            setattr(event_type, key, value)


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent create of the same name
        db.session.rollback()
        raise Conflict(EXISTS_DETAIL, code=EXISTS_CODE) from None


def get_event_type(
    org_id: str, name: str, feature_flags: Collection[str] | None = None
) -> EventType:
    """The org's event type with that name (archived included), or 404; with `feature_flags`
    (an app portal token's), also 404 for a type whose feature flag is not among them."""
    event_type = _find(org_id, name)
    if event_type is None:
        raise NotFound()
    flag = event_type.feature_flag
    if feature_flags is not None and flag is not None and flag not in feature_flags:
        raise NotFound()
    return event_type


def create_event_type(org_id: str, data: dict[str, Any]) -> EventType:
    """Create an event type; an archived one of that name is un-archived and overwritten."""
    event_type = _find(org_id, data["name"])
    if event_type is not None and not event_type.archived:
        raise Conflict(EXISTS_DETAIL, code=EXISTS_CODE)
    if event_type is None:
        event_type = EventType(org_id=org_id, name=data["name"])
        db.session.add(event_type)
    _apply(event_type, {**DEFAULTS, **data})
    _commit()
    logger.info("event_type.created", extra={"org_id": org_id, "event_type": event_type.name})
    return event_type


def list_event_types(
    org_id: str,
    limit: int,
    iterator: str | None,
    order: str | None = None,
    include_archived: bool = False,
    feature_flags: Collection[str] | None = None,
) -> Page:
    """One page of the org's event types by name (ascending unless `order=descending`); with
    `feature_flags` (an app portal token's), only types without a flag or with one of them."""
    query = select(EventType).where(EventType.org_id == org_id)
    if not include_archived:
        query = query.where(EventType.archived.is_(False))
    if feature_flags is not None:
        query = query.where(
            or_(EventType.feature_flag.is_(None), EventType.feature_flag.in_(list(feature_flags)))
        )
    return paginate(
        query,
        EventType.name,
        limit,
        iterator,
        descending=order == "descending",
        key=lambda row: row.name,
    )


def upsert_event_type(org_id: str, name: str, data: dict[str, Any]) -> tuple[EventType, bool]:
    """Replace the event type's fields, or create it. Returns (event_type, created)."""
    if not NAME_RE.fullmatch(name):
        raise Unprocessable.at(
            ["path", "event_type_name"], "Event type names are 1..256 of [a-zA-Z0-9-_.]."
        )
    event_type = _find(org_id, name)
    created = event_type is None
    if event_type is None:
        event_type = EventType(org_id=org_id, name=name)
        db.session.add(event_type)
    _apply(event_type, {**DEFAULTS, **data})
    _commit()
    return event_type, created


def patch_event_type(org_id: str, name: str, data: dict[str, Any]) -> EventType:
    """Update only the fields present in `data`."""
    event_type = get_event_type(org_id, name)
    _apply(event_type, data)
    db.session.commit()
    return event_type


def delete_event_type(org_id: str, name: str, expunge: bool = False) -> None:
    """Archive the event type, or delete it for good with `expunge`."""
    event_type = get_event_type(org_id, name)
    if expunge:
        db.session.delete(event_type)
    else:
        event_type.archived = True
    db.session.commit()
    logger.info(
        "event_type.deleted",
        extra={"org_id": org_id, "event_type": name, "expunged": expunge},
    )


def set_retry_schedule(org_id: str, name: str, schedule: Sequence[float] | None) -> EventType:
    """Give the type's deliveries their own retry delays (seconds; None: HERALD_RETRY_SCHEDULE
    again). Read by each claim, so it applies to the next retry of every pending delivery."""
    event_type = get_event_type(org_id, name)
    event_type.retry_schedule = None if schedule is None else list(schedule)
    db.session.commit()
    logger.info(
        "event_type.retry_schedule_set",
        extra={"org_id": org_id, "event_type": name, "retries": len(schedule or ())},
    )
    return event_type


def missing_event_types(org_id: str, names: Iterable[str]) -> list[str]:
    """The names (in the given order) that are not live (existing, non-archived) event types."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    live = set(
        db.session.scalars(
            select(EventType.name).where(
                EventType.org_id == org_id,
                EventType.name.in_([n for n in wanted if NAME_RE.fullmatch(n)]),
                EventType.archived.is_(False),
            )
        )
    )
    return [name for name in wanted if name not in live]


def check_event_types(
    org_id: str, names: Iterable[str], loc: tuple[str, ...] = ("body", "eventTypes")
) -> None:
    """422 at `loc` unless every name is a live event type of the org."""
    missing = missing_event_types(org_id, names)
    if missing:
        raise Unprocessable.at(
            list(loc), "The following event types don't exist: " + ", ".join(missing)
        )
