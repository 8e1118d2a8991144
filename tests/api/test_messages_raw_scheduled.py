"""Raw payloads (transformationsParams.rawPayload), deliverAt, and GET /app's exclude_apps_*
filters: each does what it says, or is refused with 422 — never silently ignored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from api.extensions import db
from api.models import Application, Delivery, Message
from api.models.common import utcnow
from api.services.delivery.claim import claim_jobs
from api.services.delivery.pump import pump
from tests.api.factories import SECRET
from tests.api.test_messages import Headers, add_endpoint, post_message
from tests.support import Receiver

RAW = '{"b": 2,   "a": [1, 2.50]}\n'  # spacing, a trailing newline: nothing normalised


def _raw(text: Any, **headers: str) -> dict[str, Any]:
    params: dict[str, Any] = {"rawPayload": text}
    if headers:
        params["headers"] = headers
    return {"payload": {}, "transformationsParams": params}


def test_raw_payload_is_stored_returned_and_sent_byte_for_byte(
    client: FlaskClient, auth_headers: Headers, application: Application, receiver: Receiver
) -> None:
    application_id = application.id
    endpoint = add_endpoint(application)
    endpoint.url, endpoint.secret = receiver.url, SECRET
    db.session.commit()
    response = post_message(client, auth_headers, "shop", **_raw(RAW))
    assert response.status_code == 202, response.get_json()
    msg_id = response.get_json()["id"]
    assert response.get_json()["payload"] == RAW
    got = client.get(f"/api/v1/app/{application_id}/msg/{msg_id}", headers=auth_headers)
    assert got.get_json()["payload"] == RAW
    assert db.session.get(Message, msg_id).payload == RAW  # type: ignore[union-attr]
    assert pump().deliver(claim_jobs(10)) == ["success"]
    [sent] = receiver.requests
    assert sent.body == RAW.encode() and sent.headers["content-type"] == "application/json"


def test_raw_payload_content_type_header_is_sent(
    client: FlaskClient, auth_headers: Headers, application: Application, receiver: Receiver
) -> None:
    endpoint = add_endpoint(application)
    endpoint.url, endpoint.secret = receiver.url, SECRET
    db.session.commit()
    body = _raw("a=1&b=2", **{"Content-Type": "application/x-www-form-urlencoded"})
    body["payload"] = ""  # the Java SDK's messageInRaw sends an empty string
    assert post_message(client, auth_headers, "shop", **body).status_code == 202
    assert pump().deliver(claim_jobs(10)) == ["success"]
    [sent] = receiver.requests
    assert sent.body == b"a=1&b=2"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"rawPayload": "x", "script": "1"}, "script"),
        ({"rawPayload": "x", "headers": {"x-extra": "1"}}, "x-extra"),
        ({"rawPayload": 5}, "rawPayload"),
        ({"headers": {"content-type": "text/plain"}}, "rawPayload"),
        ({"rawPayload": "nul\x00"}, "NUL"),
    ],
)
def test_transformations_params_herald_does_not_do_are_422(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    params: dict[str, Any],
    says: str,
) -> None:
    response = post_message(client, auth_headers, "shop", transformationsParams=params)
    assert response.status_code == 422
    assert says in str(response.get_json()["detail"])


def test_json_payload_must_still_be_an_object(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = post_message(client, auth_headers, "shop", payload=[1, 2])
    assert response.status_code == 422 and "payload" in str(response.get_json()["detail"])


def test_deliver_at_schedules_the_deliveries_and_is_returned(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    add_endpoint(application)
    with freeze_time("2026-12-01 12:00:00"):
        response = post_message(client, auth_headers, "shop", deliverAt="2026-12-01T13:00:00Z")
        assert response.status_code == 202, response.get_json()
        assert response.get_json()["deliverAt"] == "2026-12-01T13:00:00Z"
        msg_id = response.get_json()["id"]
        [row] = db.session.scalars(select(Delivery).where(Delivery.msg_id == msg_id)).all()
        assert row.next_attempt_at == utcnow() + timedelta(hours=1)
        assert claim_jobs(10) == []  # not due before its time
    with freeze_time("2026-12-01 13:00:01"):
        assert [job.msg_id for job in claim_jobs(10)] == [msg_id]


def test_deliver_at_in_the_past_is_due_now_and_beyond_a_day_is_422(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    add_endpoint(application)
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    msg_id = post_message(client, auth_headers, "shop", deliverAt=past).get_json()["id"]
    [row] = db.session.scalars(select(Delivery).where(Delivery.msg_id == msg_id)).all()
    assert row.next_attempt_at is not None and row.next_attempt_at <= utcnow()
    far = (utcnow() + timedelta(hours=25)).isoformat()
    response = post_message(client, auth_headers, "shop", deliverAt=far)
    assert response.status_code == 422 and "deliverAt" in str(response.get_json()["detail"])


def test_list_applications_exclude_filters(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    apps = {}
    for name in ("none", "disabled", "live"):
        apps[name] = Application(org_id=org_id, name=name, uid=name)
        db.session.add(apps[name])
    db.session.commit()
    add_endpoint(apps["disabled"], disabled=True)
    add_endpoint(apps["live"])
    ids = {name: app.id for name, app in apps.items()}

    def listed(query: str) -> set[str]:
        body = client.get(f"/api/v1/app?{query}", headers=auth_headers).get_json()
        return {a["id"] for a in body["data"]} & set(ids.values())

    assert listed("") == set(ids.values())
    assert listed("exclude_apps_with_no_endpoints=true") == {ids["disabled"], ids["live"]}
    assert listed("exclude_apps_with_disabled_endpoints=true") == {ids["live"]}
    assert listed("exclude_apps_with_svix_play_endpoints=true") == set(ids.values())
