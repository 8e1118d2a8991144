"""Messages API: create (with deliveries), list, get, expunge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from api.extensions import db, get_redis
from api.models import Application, Delivery, Endpoint, Message
from api.services import driver
from api.services.queue import QUEUE
from api.services.tokens import create_token
from tests.support import no_pump_awake

Headers = dict[str, str]


def add_endpoint(app: Application, **fields: Any) -> Endpoint:
    """An endpoint row with the given filters."""
    endpoint = Endpoint(app_id=app.id, url="https://example.com/hook", secret="whsec_x", **fields)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def post_message(client: FlaskClient, headers: Headers, app_id: str, **body: Any) -> Any:
    """POST a message (default body user.signup {"a": 1})."""
    body = {"eventType": "user.signup", "payload": {"a": 1}, **body}
    return client.post(f"/api/v1/app/{app_id}/msg", json=body, headers=headers)


def test_create_message_returns_202_message_out(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = post_message(
        client, auth_headers, "shop", eventId="evt-1", channels=["a"], tags=["t1"]
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["id"].startswith("msg_") and body["timestamp"].endswith("Z")
    assert body["payload"] == {"a": 1}
    assert (body["eventType"], body["eventId"], body["channels"], body["tags"]) == (
        "user.signup",
        "evt-1",
        ["a"],
        ["t1"],
    )


def test_create_message_without_content_returns_empty_payload(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = client.post(
        "/api/v1/app/shop/msg?with_content=false",
        headers=auth_headers,
        json={"eventType": "x", "payload": {"a": 1}},
    )
    assert response.status_code == 202
    assert response.get_json()["payload"] == {}


def test_create_message_stores_compact_payload_once(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    payload = {"name": "Zoë ✓", "nested": {"list": [1, 2.5, None, True]}}
    msg_id = post_message(client, auth_headers, "shop", payload=payload).get_json()["id"]
    stored = db.session.get(Message, msg_id).payload
    assert stored == '{"name":"Zoë ✓","nested":{"list":[1,2.5,null,true]}}'


def test_create_message_unknown_app_returns_404(client: FlaskClient, auth_headers: Headers) -> None:
    response = post_message(client, auth_headers, "nope")
    assert response.status_code == 404
    assert response.get_json() == {"code": "not_found", "detail": "Application not found"}


def test_create_message_without_token_returns_401(client: FlaskClient) -> None:
    response = client.post("/api/v1/app/shop/msg", json={})
    assert response.status_code == 401


def test_create_message_duplicate_event_id_returns_409(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    assert post_message(client, auth_headers, "shop", eventId="once").status_code == 202
    response = post_message(client, auth_headers, "shop", eventId="once")
    assert response.status_code == 409
    assert response.get_json()["code"] == "conflict"
    assert db.session.query(Message).filter_by(event_id="once").count() == 1


def test_create_message_application_creates_missing_app(
    client: FlaskClient, auth_headers: Headers, org_id: str
) -> None:
    response = post_message(
        client,
        auth_headers,
        "new-app",
        application={"name": "New", "uid": "new-app", "metadata": {"k": "v"}},
    )
    assert response.status_code == 202
    app = db.session.scalar(select(Application).where(Application.uid == "new-app"))
    assert (app.org_id, app.name, app.metadata_) == (org_id, "New", {"k": "v"})


def test_create_message_application_is_ignored_when_app_exists(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = post_message(
        client, auth_headers, application.id, application={"name": "Other", "uid": "other"}
    )
    assert response.status_code == 202
    assert db.session.query(Application).count() == 1


def test_create_message_application_uid_mismatch_returns_422(
    client: FlaskClient, auth_headers: Headers
) -> None:
    response = post_message(
        client, auth_headers, "path-uid", application={"name": "New", "uid": "other"}
    )
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "application", "uid"]


@pytest.mark.parametrize(
    "body",
    [
        {"eventType": "x", "payload": [1, 2]},
        {"eventType": "x", "payload": "text"},
        {"eventType": "x"},
        {"eventType": "bad type!", "payload": {}},
        {"eventType": "x", "payload": {}, "payloadRetentionPeriod": 91},
        {"eventType": "x", "payload": {}, "channels": []},
        {"eventType": "x", "payload": {}, "tags": ["a", "b", "c", "d", "e", "f"]},
    ],
)
def test_create_message_invalid_body_returns_422(
    client: FlaskClient, auth_headers: Headers, application: Application, body: dict[str, Any]
) -> None:
    response = client.post("/api/v1/app/shop/msg", json=body, headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][0] == "body"


def test_create_message_nan_payload_returns_422(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    data = b'{"eventType": "x", "payload": {"n": NaN}}'
    response = client.post(
        "/api/v1/app/shop/msg", data=data, headers=auth_headers, content_type="application/json"
    )
    assert response.status_code in (400, 422)


@freeze_time("2024-05-01T12:00:00Z")
def test_create_message_retention_sets_expiration(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    default = post_message(client, auth_headers, "shop").get_json()["id"]
    short = post_message(client, auth_headers, "shop", payloadRetentionPeriod=2).get_json()["id"]
    hours = post_message(client, auth_headers, "shop", payloadRetentionHours=5).get_json()["id"]
    created = db.session.get(Message, default).created_at
    assert db.session.get(Message, default).expiration - created == timedelta(days=90)
    assert db.session.get(Message, short).expiration - created == timedelta(days=2)
    assert db.session.get(Message, hours).expiration - created == timedelta(hours=5)


def test_create_message_adds_one_delivery_per_matching_endpoint(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    matching = {
        add_endpoint(application).id,
        add_endpoint(application, event_types=["user.signup", "x"]).id,
        add_endpoint(application, channels=["eu", "us"]).id,
    }
    add_endpoint(application, event_types=["user.deleted"])
    add_endpoint(application, channels=["asia"])
    add_endpoint(application, disabled=True)
    no_pump_awake(get_redis())  # no pump awake: the message wakes one
    queued_before = get_redis().llen(QUEUE)
    msg_id = post_message(client, auth_headers, "shop", channels=["us"]).get_json()["id"]
    deliveries = db.session.scalars(select(Delivery).where(Delivery.msg_id == msg_id)).all()
    assert {d.endpoint_id for d in deliveries} == matching
    assert all(d.lease_token is None and d.next_attempt_at for d in deliveries)  # due now
    assert get_redis().llen(QUEUE) - queued_before == 1  # one wake-up for the three


def test_create_message_without_channels_skips_channel_filtered_endpoints(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    add_endpoint(application, channels=["eu"])
    msg_id = post_message(client, auth_headers, "shop").get_json()["id"]
    assert db.session.query(Delivery).filter_by(msg_id=msg_id).count() == 0


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement executed while the test runs (through SQLAlchemy or, on the hot
    paths, psycopg directly: api/services/driver.py)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(sql.strip().split()[0].upper() + " " + sql)

    real_execute = driver.execute

    def execute_recorded(sql: str, params: dict[str, Any]) -> list[Any]:
        record(None, None, sql)
        return real_execute(sql, params)

    monkeypatch.setattr(driver, "execute", execute_recorded)
    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def test_create_message_uses_constant_number_of_queries(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    statements: list[str],
    database: str,
) -> None:
    for _ in range(5):
        add_endpoint(application)
    statements.clear()
    assert post_message(client, auth_headers, "shop").status_code == 202
    first = [s for s in statements if s.startswith("SELECT") and "api_token" not in s]
    assert len(first) == (1 if database == "postgresql" else 2)  # the route (SQLite: + check)
    statements.clear()
    assert post_message(client, auth_headers, "shop").status_code == 202  # the route cached
    selects = [s for s in statements if s.startswith("SELECT") and "api_token" not in s]
    writes = [s for s in statements if s.startswith(("INSERT", "WITH", "UPDATE"))]
    if database == "postgresql":  # the message and all five deliveries in one statement
        assert selects == []
        assert len(writes) == 1
        assert "INSERT INTO message" in writes[0] and "INSERT INTO delivery" in writes[0]
        assert "app_routing" in writes[0]  # stored only while the cached route is current
    else:  # SQLite: the message, the route's check, then the five deliveries (executemany)
        assert len(selects) == 1 and "app_routing" in selects[0]
        assert len(writes) == 2
        assert "INTO message" in writes[0] and "INTO delivery" in writes[1]


def test_create_message_path_id_wins_over_another_apps_uid(
    client: FlaskClient, auth_headers: Headers, application: Application, org_id: str
) -> None:
    decoy = Application(org_id=org_id, name="Decoy", uid=application.id)
    db.session.add(decoy)
    db.session.commit()
    add_endpoint(decoy)
    msg_id = post_message(client, auth_headers, application.id).get_json()["id"]
    assert db.session.get(Message, msg_id).app_id == application.id
    assert db.session.query(Delivery).filter_by(msg_id=msg_id).count() == 0


def test_get_message_by_id_and_event_id(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    msg_id = post_message(client, auth_headers, "shop", eventId="evt-9").get_json()["id"]
    by_id = client.get(f"/api/v1/app/{application.id}/msg/{msg_id}", headers=auth_headers)
    by_event = client.get("/api/v1/app/shop/msg/evt-9?with_content=false", headers=auth_headers)
    assert by_id.status_code == by_event.status_code == 200
    assert by_id.get_json()["payload"] == {"a": 1}
    assert by_event.get_json()["id"] == msg_id and by_event.get_json()["payload"] == {}


def test_get_message_of_another_org_returns_404(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    msg_id = post_message(client, auth_headers, "shop").get_json()["id"]
    _, other = create_token("other-org")
    response = client.get(
        f"/api/v1/app/{application.id}/msg/{msg_id}", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_expunge_content_makes_payload_read_as_expired(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    msg_id = post_message(client, auth_headers, "shop", eventId="gone").get_json()["id"]
    response = client.delete("/api/v1/app/shop/msg/gone/content", headers=auth_headers)
    assert response.status_code == 204
    assert db.session.get(Message, msg_id).payload is None
    body = client.get(f"/api/v1/app/shop/msg/{msg_id}", headers=auth_headers).get_json()
    assert body["payload"] == {"expired": True}
    listed = client.get("/api/v1/app/shop/msg", headers=auth_headers).get_json()
    assert listed["data"][0]["payload"] == {"expired": True}


def test_expunge_content_unknown_message_returns_404(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = client.delete("/api/v1/app/shop/msg/missing/content", headers=auth_headers)
    assert response.status_code == 404


def test_list_messages_newest_first_with_pagination(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    with freeze_time("2024-05-01T12:00:00Z", auto_tick_seconds=1):  # ids sort by 1/256 s
        ids = [
            post_message(client, auth_headers, "shop", payload={"n": n}).get_json()["id"]
            for n in range(5)
        ]
        # lists cover 90 days around the anchor (now, before/after or the iterator), as Svix's
        first = client.get("/api/v1/app/shop/msg?limit=2", headers=auth_headers).get_json()
    assert [m["id"] for m in first["data"]] == ids[::-1][:2] and first["done"] is False
    second = client.get(
        f"/api/v1/app/shop/msg?limit=2&iterator={first['iterator']}", headers=auth_headers
    ).get_json()
    third = client.get(
        f"/api/v1/app/shop/msg?limit=2&iterator={second['iterator']}", headers=auth_headers
    ).get_json()
    assert [m["id"] for m in second["data"] + third["data"]] == ids[::-1][2:]
    assert third["done"] is True
    back = client.get(
        f"/api/v1/app/shop/msg?limit=2&iterator={second['prevIterator']}", headers=auth_headers
    ).get_json()
    assert [m["id"] for m in back["data"]] == ids[::-1][:2]


def test_list_messages_filters_event_types_channel_and_tag(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    with freeze_time("2024-05-01T12:00:00Z", auto_tick_seconds=1):  # a distinct id tick each
        a = post_message(
            client, auth_headers, "shop", eventType="a.b", channels=["eu"], tags=["vip"]
        ).get_json()["id"]
        b = post_message(client, auth_headers, "shop", eventType="c.d").get_json()["id"]
        post_message(client, auth_headers, "shop", eventType="e.f", channels=["us"])

    def ids(query: str) -> list[str]:  # `before` anchors the 90-day list window in 2024
        url = f"/api/v1/app/shop/msg?{query}&before=2024-05-02T00:00:00Z"
        body = client.get(url, headers=auth_headers).get_json()
        return [m["id"] for m in body["data"]]

    assert ids("event_types=a.b%2Cc.d") == [b, a]
    assert ids("channel=eu") == [a]
    assert ids("tag=vip") == [a]
    assert ids("channel=none") == []


def test_list_messages_filters_before_and_after(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    ids = []
    for day in (1, 2, 3):
        with freeze_time(f"2024-05-0{day}T12:00:00Z"):
            ids.append(post_message(client, auth_headers, "shop").get_json()["id"])

    def listed(query: str) -> list[str]:
        body = client.get(f"/api/v1/app/shop/msg?{query}", headers=auth_headers).get_json()
        return [m["id"] for m in body["data"]]

    assert listed("before=2024-05-02T12:00:00Z") == [ids[0]]
    assert listed("after=2024-05-02T12:00:00%2B00:00") == [ids[2]]
    assert listed("after=2024-05-01T00:00:00&before=2024-05-03T00:00:00") == [ids[1], ids[0]]


def test_list_messages_without_content_and_unknown_app(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    post_message(client, auth_headers, "shop")
    body = client.get("/api/v1/app/shop/msg?with_content=false", headers=auth_headers)
    assert body.get_json()["data"][0]["payload"] == {}
    assert client.get("/api/v1/app/nope/msg", headers=auth_headers).status_code == 404


def test_list_messages_invalid_limit_returns_422(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    response = client.get("/api/v1/app/shop/msg?limit=251", headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["query", "limit"]
    assert json.loads(response.data)  # JSON, never HTML


def test_list_messages_covers_90_days_around_the_anchor(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    with freeze_time("2024-01-01T12:00:00Z"):
        old = post_message(client, auth_headers, "shop").get_json()["id"]
    with freeze_time("2024-05-01T12:00:00Z"):  # 121 days later
        recent = post_message(client, auth_headers, "shop").get_json()["id"]
        now_list = client.get("/api/v1/app/shop/msg", headers=auth_headers).get_json()
    assert [m["id"] for m in now_list["data"]] == [recent]
    anchored = client.get(
        "/api/v1/app/shop/msg?before=2024-01-02T00:00:00Z", headers=auth_headers
    ).get_json()
    assert [m["id"] for m in anchored["data"]] == [old]
