"""The ingest routing cache and its two hot statements, on PostgreSQL and SQLite alike: the
triggers bump an app's routing version for every routing change whoever makes it, and a
message is stored only with the routing that is current."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from api.extensions import db
from api.models import Application, AppRouting, Delivery, Endpoint, Message, Organization
from api.services import messages, routing
from api.services.delivery import outbox


@pytest.fixture
def shop(app: Flask, committed_db: None) -> Iterator[dict[str, Any]]:
    """A committed org, app (uid `shop`) and two endpoints, inside an app context."""
    with app.app_context():
        routing.CACHE.routes.clear()
        org = Organization(name="routing")
        db.session.add(org)
        db.session.flush()
        application = Application(org_id=org.id, name="Shop", uid="shop")
        db.session.add(application)
        db.session.flush()
        first = Endpoint(app_id=application.id, url="https://a.example/h", secret="whsec_a")
        second = Endpoint(app_id=application.id, url="https://b.example/h", secret="whsec_b")
        db.session.add_all([first, second])
        db.session.commit()
        yield {"org": org.id, "app": application.id, "first": first.id, "second": second.id}
        db.session.remove()


def _elsewhere(sql: str, **params: object) -> None:
    """A statement committed on another connection of the same database (another process)."""
    with db.engine.connect() as connection:
        connection.execute(text(sql), params)
        connection.commit()


def _version(app_id: str) -> int:
    db.session.rollback()  # a fresh snapshot
    found = db.session.scalar(select(AppRouting.version).where(AppRouting.app_id == app_id))
    return int(found or 0)


@pytest.mark.parametrize(
    ("change", "bumps"),
    [
        ("UPDATE endpoint SET disabled = :yes WHERE id = :id", True),
        ("UPDATE endpoint SET event_types = '[\"a\"]' WHERE id = :id", True),
        ("UPDATE endpoint SET channels = '[\"c\"]' WHERE id = :id", True),
        ("DELETE FROM endpoint WHERE id = :id", True),
        ("UPDATE endpoint SET url = 'https://z.example', description = '' WHERE id = :id", False),
        ("UPDATE endpoint SET disabled = :no WHERE id = :id", False),  # the same value
        ("UPDATE endpoint SET first_failure_at = NULL, headers = '{}' WHERE id = :id", False),
    ],
)
def test_the_triggers_bump_the_version_for_routing_changes_only(
    shop: dict[str, Any], change: str, bumps: bool
) -> None:
    before = _version(shop["app"])
    assert before >= 2, "creating the two endpoints bumped it"
    _elsewhere(change, id=shop["second"], yes=True, no=False)
    assert (_version(shop["app"]) > before) is bumps


def test_an_endpoint_created_through_the_orm_bumps_it(shop: dict[str, Any]) -> None:
    before = _version(shop["app"])
    db.session.add(Endpoint(app_id=shop["app"], url="https://c.example/h", secret="whsec_c"))
    db.session.commit()
    assert _version(shop["app"]) > before


def _row(shop: dict[str, Any]) -> dict[str, Any]:
    data = {"event_type": "a", "payload_text": "{}", "channels": None, "tags": None}
    return messages.message_row(shop["org"], shop["app"], data)


def test_store_refuses_a_stale_route_and_stores_nothing(shop: dict[str, Any]) -> None:
    route = routing.read(shop["org"], "shop")
    assert route is not None and {e.id for e in route.endpoints} == {shop["first"], shop["second"]}
    _elsewhere("UPDATE endpoint SET disabled = :yes WHERE id = :id", id=shop["second"], yes=True)
    row = _row(shop)
    assert not routing.store("shop", route, row, outbox.due_rows(row, [shop["second"]]))
    assert db.session.get(Message, row["id"]) is None
    assert db.session.scalars(select(Delivery.id)).all() == []
    fresh = routing.read(shop["org"], "shop")
    assert fresh is not None and [e.id for e in fresh.endpoints] == [shop["first"]]
    assert routing.store("shop", fresh, row, outbox.due_rows(row, [shop["first"]]))
    assert db.session.scalars(select(Delivery.endpoint_id)).all() == [shop["first"]]


def test_store_checks_the_key_still_names_the_app(shop: dict[str, Any]) -> None:
    route = routing.read(shop["org"], "shop")
    assert route is not None
    _elsewhere("UPDATE application SET uid = 'other' WHERE id = :id", id=shop["app"])
    assert not routing.store("shop", route, _row(shop), [])
    assert routing.read(shop["org"], "shop") is None
    assert routing.CACHE.get(shop["org"], "shop") is None


def test_messages_follow_changes_made_elsewhere(shop: dict[str, Any]) -> None:
    """Through the service: the cached route is used while current, re-read when not."""
    data = {"event_type": "a", "payload_text": "{}"}

    def routed() -> set[str]:
        message = messages.create_message(shop["org"], "shop", dict(data))
        return set(
            db.session.scalars(select(Delivery.endpoint_id).where(Delivery.msg_id == message.id))
        )

    assert routed() == {shop["first"], shop["second"]}
    assert routing.CACHE.get(shop["org"], "shop") is not None
    _elsewhere("UPDATE endpoint SET event_types = '[\"b\"]' WHERE id = :id", id=shop["first"])
    assert routed() == {shop["second"]}
    _elsewhere("DELETE FROM endpoint WHERE id = :id", id=shop["second"])
    assert routed() == set()
