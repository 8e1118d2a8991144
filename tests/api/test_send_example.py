"""POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example: the event type's example,
to that endpoint only."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from svix.webhooks import Webhook

from api.extensions import db, get_redis
from api.models import (
    Application,
    Delivery,
    Endpoint,
    EventType,
    Message,
    MessageStatus,
    TriggerType,
)
from api.services import tokens
from tests.api.factories import SECRET, add_endpoint, app_token_headers
from tests.support import Receiver, eventually, no_pump_awake

Headers = dict[str, str]
EXAMPLES = [{"id": 1, "email": "zoë@example.com"}, {"id": 2}]
SCHEMAS = {"1": {"type": "object", "examples": EXAMPLES}}


@pytest.fixture
def event_types(org_id: str) -> None:
    db.session.add_all(
        [
            EventType(org_id=org_id, name="user.signup", description="", schemas=SCHEMAS),
            EventType(org_id=org_id, name="bare", description="", schemas={"1": {}}),
            EventType(org_id=org_id, name="none", description=""),
            EventType(
                org_id=org_id, name="beta.x", description="", schemas=SCHEMAS, feature_flag="beta"
            ),
        ]
    )
    db.session.commit()


@pytest.fixture
def target(application: Application) -> Endpoint:
    return add_endpoint(application, uid="target", event_types=["nothing.else"])


@pytest.fixture
def bystander(application: Application) -> Endpoint:
    """An endpoint that would get every message of the app: it must get no example."""
    return add_endpoint(application, uid="bystander")


def send(client: FlaskClient, headers: Headers, endpoint: str = "target", **body: Any) -> Any:
    return client.post(
        f"/api/v1/app/shop/endpoint/{endpoint}/send-example", json=body, headers=headers
    )


def deliveries() -> list[Delivery]:
    return list(db.session.scalars(select(Delivery)))


def test_send_example_answers_202_message_out_with_the_first_example(
    client: FlaskClient,
    auth_headers: Headers,
    event_types: None,
    target: Endpoint,
    bystander: Endpoint,
) -> None:
    response = send(client, auth_headers, eventType="user.signup")
    assert response.status_code == 202
    body = response.get_json()
    assert body["id"].startswith("msg_") and body["eventType"] == "user.signup"
    assert body["payload"] == EXAMPLES[0]
    assert [(d.msg_id, d.endpoint_id, d.trigger_type) for d in deliveries()] == [
        (body["id"], target.id, TriggerType.SCHEDULED)
    ]
    message = db.session.get(Message, body["id"])
    assert message is not None and json.loads(message.payload or "") == EXAMPLES[0]


def test_send_example_picks_example_index(
    client: FlaskClient, auth_headers: Headers, event_types: None, target: Endpoint
) -> None:
    response = send(client, auth_headers, eventType="user.signup", exampleIndex=1)
    assert response.status_code == 202 and response.get_json()["payload"] == EXAMPLES[1]


@pytest.mark.parametrize("index", [2, 99])
def test_send_example_index_past_the_examples_is_422(
    client: FlaskClient, auth_headers: Headers, event_types: None, target: Endpoint, index: int
) -> None:
    response = send(client, auth_headers, eventType="user.signup", exampleIndex=index)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "exampleIndex"]
    assert deliveries() == [] and db.session.scalars(select(Message)).all() == []


@pytest.mark.parametrize(
    "body", [{}, {"eventType": "bad name"}, {"eventType": "user.signup", "exampleIndex": -1}]
)
def test_send_example_bad_body_is_422(
    client: FlaskClient, auth_headers: Headers, target: Endpoint, body: dict[str, Any]
) -> None:
    assert send(client, auth_headers, **body).status_code == 422


@pytest.mark.parametrize("name", ["bare", "none"])
def test_send_example_without_examples_is_400_invalid_scheme(
    client: FlaskClient, auth_headers: Headers, event_types: None, target: Endpoint, name: str
) -> None:
    response = send(client, auth_headers, eventType=name)
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_scheme"
    assert deliveries() == []


def test_send_example_of_svix_ping_sends_success_true(
    client: FlaskClient, auth_headers: Headers, target: Endpoint
) -> None:
    response = send(client, auth_headers, eventType="svix.ping", exampleIndex=5)
    assert response.status_code == 202 and response.get_json()["payload"] == {"success": True}
    assert [d.endpoint_id for d in deliveries()] == [target.id]


def test_send_example_unknown_event_type_or_endpoint_is_404(
    client: FlaskClient, auth_headers: Headers, event_types: None, target: Endpoint
) -> None:
    assert send(client, auth_headers, eventType="nope").status_code == 404
    assert send(client, auth_headers, "nope", eventType="user.signup").status_code == 404


def test_send_example_to_disabled_endpoint_stores_message_but_sends_nothing(
    client: FlaskClient, auth_headers: Headers, event_types: None, target: Endpoint
) -> None:
    target.disabled = True
    db.session.commit()
    assert send(client, auth_headers, eventType="user.signup").status_code == 202
    assert deliveries() == []


def test_send_example_with_app_token_needs_create_attempts(
    client: FlaskClient, application: Application, event_types: None, target: Endpoint
) -> None:
    denied = send(client, app_token_headers(application, ("ViewBase", "ManageEndpoint")))
    assert denied.status_code == 403
    allowed = send(
        client, app_token_headers(application, ("ViewBase", "CreateAttempts")), eventType="bare"
    )
    assert allowed.status_code == 400  # authorized: the event type's lack of examples answers


def test_send_example_with_app_token_hides_other_flags_event_types(
    client: FlaskClient, application: Application, event_types: None, target: Endpoint
) -> None:
    plain = app_token_headers(application)
    assert send(client, plain, eventType="beta.x").status_code == 404
    beta = app_token_headers(application, feature_flags=("beta",))
    assert send(client, beta, eventType="beta.x").status_code == 202


def test_send_example_reaches_only_that_endpoint(
    app: Flask, committed_db: None, celery_worker: object, receiver: Receiver
) -> None:
    with app.app_context():
        no_pump_awake(get_redis())  # no pump awake from an earlier test
        org, plain = tokens.create_token("examples")
        shop = Application(org_id=org.id, name="Shop", uid="shop")
        db.session.add(shop)
        db.session.commit()
        db.session.add(EventType(org_id=org.id, name="user.signup", schemas=SCHEMAS))
        for uid in ("target", "bystander"):
            db.session.add(
                Endpoint(app_id=shop.id, uid=uid, url=f"{receiver.url}/{uid}", secret=SECRET)
            )
        db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    response = send(app.test_client(), headers, eventType="user.signup", exampleIndex=1)
    assert response.status_code == 202
    got = receiver.wait_for(1)[0]
    assert got.path == "/hook/target"
    Webhook(SECRET).verify(got.body, got.headers)  # raises unless signed with the secret
    assert json.loads(got.body) == EXAMPLES[1]
    assert got.headers["webhook-id"] == response.get_json()["id"]

    def recorded() -> int:
        with app.app_context():
            return int(
                db.session.query(Delivery).filter(Delivery.status == MessageStatus.SUCCESS).count()
            )

    eventually(recorded, what="the attempt recorded as a success")
    time.sleep(1.0)  # a stray delivery to the bystander would have arrived by now
    assert [r.path for r in receiver.requests] == ["/hook/target"]
