"""Ingest routes with the app's endpoints as read (or cached), then inserts: what a concurrent
change in between does, and what a change made by another process does to a cached route."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api.extensions import db
from api.models import Application, Delivery, Endpoint, Organization
from api.services import routing
from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.postgresql_only  # another PostgreSQL connection commits meanwhile


def _concurrently(sql: str, *params: object) -> None:
    """What another request commits meanwhile (its own connection)."""
    url = make_url(DATABASE_URL).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql, params)


@pytest.fixture
def shop(app: Flask, api_token: str) -> dict[str, Any]:
    """A committed app with two endpoints, and the token's headers."""
    with app.app_context():
        org = db.session.scalars(select(Organization).where(Organization.name == "e2e")).one()
        application = Application(org_id=org.id, name="Shop", uid="shop")
        db.session.add(application)
        db.session.flush()
        kept = Endpoint(app_id=application.id, url="https://a.example/h", secret="whsec_a")
        doomed = Endpoint(app_id=application.id, url="https://b.example/h", secret="whsec_b")
        db.session.add_all([kept, doomed])
        db.session.commit()
        found = {"kept": kept.id, "doomed": doomed.id, "app": application.id}
        db.session.remove()
    return {**found, "headers": {"Authorization": f"Bearer {api_token}"}}


def _post(app: Flask, headers: dict[str, str]) -> Any:
    return app.test_client().post(
        "/api/v1/app/shop/msg", json={"eventType": "a", "payload": {}}, headers=headers
    )


def _after_first_read(monkeypatch: pytest.MonkeyPatch, sql: str, *params: object) -> None:
    """Run `sql` on another connection right after the first routing read."""
    real, calls = routing.read, []

    def read_then_change(*args: Any) -> Any:
        found = real(*args)
        if not calls:
            _concurrently(sql, *params)
        calls.append(args)
        return found

    routing.CACHE.routes.clear()
    monkeypatch.setattr(routing, "read", read_then_change)


def test_endpoint_deleted_meanwhile_is_routed_around(
    app: Flask, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _after_first_read(monkeypatch, "DELETE FROM endpoint WHERE id = %s", shop["doomed"])
    response = _post(app, shop["headers"])
    assert response.status_code == 202, response.get_json()
    with app.app_context():
        routed = db.session.scalars(
            select(Delivery.endpoint_id).where(Delivery.msg_id == response.get_json()["id"])
        ).all()
        db.session.remove()
    assert routed == [shop["kept"]]


def test_app_deleted_meanwhile_is_404_not_500(
    app: Flask, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _after_first_read(monkeypatch, "DELETE FROM application WHERE id = %s", shop["app"])
    response = _post(app, shop["headers"])
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def _routed(app: Flask, response: Any) -> list[str]:
    assert response.status_code == 202, response.get_json()
    with app.app_context():
        found = db.session.scalars(
            select(Delivery.endpoint_id)
            .where(Delivery.msg_id == response.get_json()["id"])
            .order_by(Delivery.endpoint_id)
        ).all()
        db.session.remove()
    return list(found)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("UPDATE endpoint SET disabled = true WHERE id = %s", ["kept"]),
        ("""UPDATE endpoint SET event_types = '["other"]' WHERE id = %s""", ["kept"]),
        ("""UPDATE endpoint SET channels = '["vip"]' WHERE id = %s""", ["kept"]),
        ("DELETE FROM endpoint WHERE id = %s", ["kept"]),
        ("UPDATE endpoint SET description = 'only words' WHERE id = %s", ["doomed", "kept"]),
    ],
)
def test_a_cached_route_follows_changes_made_elsewhere(
    app: Flask, shop: dict[str, Any], change: str, expected: list[str]
) -> None:
    """The first message caches the route; another process (a plain SQL statement on its own
    connection, no ORM) changes an endpoint; the next message is routed by the change."""
    routing.CACHE.routes.clear()
    both = sorted([shop["kept"], shop["doomed"]])
    assert _routed(app, _post(app, shop["headers"])) == both
    assert routing.CACHE.routes, "the first message cached the route"
    _concurrently(change, shop["doomed"])
    assert _routed(app, _post(app, shop["headers"])) == sorted(shop[name] for name in expected)


def test_an_endpoint_created_elsewhere_is_routed_to(app: Flask, shop: dict[str, Any]) -> None:
    routing.CACHE.routes.clear()
    _routed(app, _post(app, shop["headers"]))
    _concurrently(
        "INSERT INTO endpoint (id, app_id, url, description, disabled, metadata, secret, old_keys,"
        " headers, created_at, updated_at) VALUES ('ep_new', %s, 'https://c.example/h', '',"
        " false, '{}', 'whsec_c', '[]', '{}', now(), now())",
        shop["app"],
    )
    assert "ep_new" in _routed(app, _post(app, shop["headers"]))


def test_a_renamed_uid_is_not_routed_by_the_cache(app: Flask, shop: dict[str, Any]) -> None:
    routing.CACHE.routes.clear()
    _routed(app, _post(app, shop["headers"]))
    _concurrently("UPDATE application SET uid = 'shop-renamed' WHERE id = %s", shop["app"])
    response = _post(app, shop["headers"])
    assert response.status_code == 404, response.get_json()
