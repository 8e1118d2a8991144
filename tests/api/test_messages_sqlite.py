"""Ingest on SQLite (the `make run` quickstart): the generic path routes like PostgreSQL's."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import select

from api import create_app
from api.extensions import db, get_redis
from api.models import Application, Delivery, Endpoint, Message
from api.services.queue import QUEUE
from api.services.tokens import create_token
from tests.conftest import test_overrides


def test_create_message_on_sqlite_stores_routes_and_publishes(tmp_path: Path) -> None:
    app = create_app(test_overrides(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'h.db'}"))
    with app.app_context():
        upgrade()
        org, token = create_token("quickstart")
        shop = Application(org_id=org.id, name="Shop", uid="shop")
        db.session.add(shop)
        db.session.flush()
        wanted = [
            Endpoint(app_id=shop.id, url="https://a.example/h", secret="whsec_a"),
            Endpoint(
                app_id=shop.id,
                url="https://b.example/h",
                secret="whsec_b",
                event_types=["user.signup"],
                channels=["eu"],
            ),
        ]
        skipped = [
            Endpoint(app_id=shop.id, url="https://c.example/h", secret="whsec_c", disabled=True),
            Endpoint(app_id=shop.id, url="https://d.example/h", secret="whsec_d", channels=["us"]),
        ]
        db.session.add_all(wanted + skipped)
        db.session.commit()
        queued = get_redis().llen(QUEUE)
        response = app.test_client().post(
            "/api/v1/app/shop/msg",
            data='{"eventType": "user.signup", "payload": {"b": 2, "a": 1}, "channels": ["eu"]}',
            headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        assert response.status_code == 202, response.get_json()
        msg_id = response.get_json()["id"]
        message = db.session.get(Message, msg_id)
        assert message is not None and message.payload == '{"b":2,"a":1}'
        assert message.channels == ["eu"]
        routed = db.session.scalars(select(Delivery.endpoint_id).where(Delivery.msg_id == msg_id))
        assert sorted(routed) == sorted(e.id for e in wanted)
        assert get_redis().llen(QUEUE) == queued + 2
        db.session.remove()
        db.engine.dispose()
