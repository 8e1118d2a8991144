"""Row builders shared by the API and service tests (plain helpers: no fixtures, no tests)."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

from api.extensions import db
from api.ids import new_id
from api.models import (
    Application,
    Delivery,
    Endpoint,
    Message,
    MessageAttempt,
    Organization,
    TriggerType,
)
from api.models.common import utcnow
from api.services import tokens
from api.services.delivery import outbox
from serializers.auth import DEFAULT_CAPABILITIES


def add_endpoint(app: Application, **fields: Any) -> Endpoint:
    """An endpoint row."""
    endpoint = Endpoint(app_id=app.id, url="https://example.com/hook", secret="whsec_x", **fields)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def add_message(app: Application, ago: float = 60.0, **fields: Any) -> Message:
    """A message created `ago` seconds ago with payload {"a": 1}."""
    at = time.time() - ago
    fields.setdefault("payload", '{"a":1}')
    fields.setdefault("event_type", "user.signup")
    fields.setdefault("expiration", utcnow() + timedelta(days=90))
    message = Message(id=new_id("msg", at), app_id=app.id, org_id=app.org_id, **fields)
    db.session.add(message)
    db.session.commit()
    return message


def add_delivery(
    message: Message,
    endpoint: Endpoint,
    status: int,
    next_attempt: Any = None,
    trigger: int = TriggerType.SCHEDULED,
) -> Delivery:
    """A delivery row in the given state."""
    delivery = Delivery(
        msg_id=message.id,
        endpoint_id=endpoint.id,
        app_id=message.app_id,
        status=status,
        trigger_type=trigger,
        next_attempt_at=next_attempt,
    )
    db.session.add(delivery)
    db.session.commit()
    return delivery


def add_attempt(
    delivery: Delivery, status: int, code: int = 200, ago: float = 30.0, response: str = "ok"
) -> MessageAttempt:
    """An attempt of the delivery made `ago` seconds ago."""
    at = time.time() - ago
    attempt = MessageAttempt(
        id=new_id("atmpt", at),
        msg_id=delivery.msg_id,
        endpoint_id=delivery.endpoint_id,
        delivery_id=delivery.id,
        app_id=delivery.app_id,
        url="https://example.com/hook",
        response=response,
        response_status_code=code,
        response_duration_ms=12,
        status=status,
        trigger_type=delivery.trigger_type,
    )
    db.session.add(attempt)
    db.session.commit()
    return attempt


SECRET = "whsec_" + base64.b64encode(b"s" * 24).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()
PAYLOAD = json.dumps({"type": "user.created", "name": "Zoë"}, separators=(",", ":"))


def seed(
    url: str,
    *,
    payload: str | None = PAYLOAD,
    trigger: TriggerType = TriggerType.SCHEDULED,
    commit: bool = True,
    **endpoint_fields: Any,
) -> Delivery:
    """An org, app, endpoint and message plus one leased delivery (outbox-made)."""
    org = Organization(name=f"org-{utcnow().timestamp()}-{id(endpoint_fields)}")
    db.session.add(org)
    db.session.flush()
    app = Application(org_id=org.id, name="app")
    db.session.add(app)
    db.session.flush()
    fields = {"secret": SECRET, "old_keys": [], "headers": {}, **endpoint_fields}
    endpoint = Endpoint(app_id=app.id, url=url, **fields)
    message = Message(
        app_id=app.id,
        org_id=org.id,
        event_type="user.created",
        payload=payload,
        expiration=utcnow() + timedelta(days=90),
    )
    db.session.add_all([endpoint, message])
    db.session.flush()
    delivery = outbox.add_delivery(message, endpoint, trigger)
    if commit:  # committed (a SAVEPOINT here): a rollback inside deliver() keeps it
        db.session.commit()
    else:
        db.session.flush()
    return delivery


def app_token_headers(
    app: Application,
    capabilities: tuple[str, ...] | None = None,
    feature_flags: tuple[str, ...] = (),
    expiry: int = 3600,
    session_id: str | None = None,
) -> dict[str, str]:
    """Authorization headers of a new app portal token for `app` (all supported capabilities
    unless given)."""
    chosen = DEFAULT_CAPABILITIES if capabilities is None else capabilities
    _, plain = tokens.create_app_token(app, chosen, feature_flags, expiry, session_id)
    return {"Authorization": f"Bearer {plain}"}


def leased_job(
    delivery: Delivery, attempt_count: int | None = None, trigger: int | None = None
) -> Any:
    """The delivery leased to the test as the claim would, and its Job (after `attempt_count`
    earlier attempts when given; `trigger` instead of the row's trigger type when given)."""
    from api.services.delivery.job import Job

    if attempt_count is not None:
        delivery.attempt_count = attempt_count
    delivery.lease_token, delivery.next_attempt_at = "test-lease", utcnow() + timedelta(seconds=10)
    db.session.commit()
    endpoint = db.session.get(Endpoint, delivery.endpoint_id)
    assert endpoint is not None
    return Job(
        delivery.id,
        "test-lease",
        delivery.msg_id,
        delivery.app_id,
        delivery.endpoint_id,
        "http://x",
        delivery.trigger_type if trigger is None else trigger,
        delivery.attempt_count,
        b"{}",
        [endpoint.secret],
        {},
        None,
        endpoint.first_failure_at,
    )
