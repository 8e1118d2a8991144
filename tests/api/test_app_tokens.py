"""App portal tokens (`appsk_…`): one application only, capability table, org routes denied,
feature-flagged event types, expiry, expire-all and logout."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from api import capabilities
from api.extensions import db
from api.models import Application, AppPortalToken, Endpoint, EventType, Message
from api.models.common import utcnow
from api.services import tokens
from tests.api.factories import add_endpoint, add_message, app_token_headers

Headers = dict[str, str]
V = "/api/v1"
# routes without require_auth: a token of any kind changes nothing there
PUBLIC = {"health.health", "health.ping", "api-docs.openapi_json"}


@pytest.fixture
def endpoint(application: Application) -> Endpoint:
    return add_endpoint(application, uid="ep-a")


@pytest.fixture
def message(application: Application) -> Message:
    return add_message(application, event_id="evt-1")


@pytest.fixture
def other_app(application: Application) -> Application:
    """A second application of the same org, with an endpoint and a message."""
    other = Application(org_id=application.org_id, name="Other", uid="other")
    db.session.add(other)
    db.session.commit()
    add_endpoint(other, uid="ep-o")
    add_message(other, event_id="evt-o")
    return other


@pytest.fixture
def portal_headers(application: Application) -> Headers:
    """A full-access app token for `shop`."""
    return app_token_headers(application)


# -- one application only ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["id", "uid"])
def test_app_token_reads_its_own_app_by_id_and_uid(
    client: FlaskClient,
    application: Application,
    endpoint: Endpoint,
    message: Message,
    portal_headers: Headers,
    key: str,
) -> None:
    app_key = getattr(application, key)
    got = client.get(f"{V}/app/{app_key}", headers=portal_headers)
    assert got.status_code == 200 and got.get_json()["id"] == application.id
    endpoints = client.get(f"{V}/app/{app_key}/endpoint", headers=portal_headers)
    assert [e["id"] for e in endpoints.get_json()["data"]] == [endpoint.id]
    messages = client.get(f"{V}/app/{app_key}/msg", headers=portal_headers)
    assert [m["id"] for m in messages.get_json()["data"]] == [message.id]


@pytest.mark.parametrize("key", ["id", "uid"])
@pytest.mark.parametrize(
    "path",
    ["", "/endpoint", "/endpoint/ep-o", "/endpoint/ep-o/secret", "/msg", "/msg/evt-o"],
)
def test_app_token_gets_404_for_another_app_by_id_and_uid(
    client: FlaskClient, other_app: Application, portal_headers: Headers, key: str, path: str
) -> None:
    response = client.get(f"{V}/app/{getattr(other_app, key)}{path}", headers=portal_headers)
    assert response.status_code == 404
    assert response.get_json() == {"code": "not_found", "detail": "Entity not found"}


def test_app_token_write_to_another_app_is_404_even_without_the_capability(
    client: FlaskClient, other_app: Application, application: Application
) -> None:
    headers = app_token_headers(application, ("ViewBase",))
    body = {"url": "https://example.com/x"}
    response = client.post(f"{V}/app/other/endpoint", json=body, headers=headers)
    assert response.status_code == 404
    assert db.session.scalars(select(Endpoint).where(Endpoint.app_id == other_app.id)).all()


def test_app_token_follows_a_uid_change_at_once(
    client: FlaskClient, auth_headers: Headers, application: Application, portal_headers: Headers
) -> None:
    assert client.get(f"{V}/app/shop", headers=portal_headers).status_code == 200
    patched = client.patch(f"{V}/app/shop", json={"uid": "store"}, headers=auth_headers)
    assert patched.status_code == 200
    assert client.get(f"{V}/app/store", headers=portal_headers).status_code == 200
    assert client.get(f"{V}/app/shop", headers=portal_headers).status_code == 404


def test_app_token_of_a_deleted_app_is_401(
    client: FlaskClient, auth_headers: Headers, application: Application, portal_headers: Headers
) -> None:
    assert client.delete(f"{V}/app/{application.id}", headers=auth_headers).status_code == 204
    response = client.get(f"{V}/event-type", headers=portal_headers)
    assert response.status_code == 401
    assert db.session.scalars(select(AppPortalToken)).all() == []


# -- organization-wide routes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/app", None),
        ("POST", "/app", {"name": "Mine"}),
        ("PUT", "/app/shop", {"name": "Mine"}),
        ("PATCH", "/app/shop", {"name": "Mine"}),
        ("DELETE", "/app/shop", None),
        ("POST", "/event-type", {"name": "x.y", "description": "d"}),
        ("PUT", "/event-type/user.signup", {"description": "d"}),
        ("PATCH", "/event-type/user.signup", {"description": "d"}),
        ("DELETE", "/event-type/user.signup", None),
        ("GET", "/event-type/user.signup/retry-schedule", None),
        ("GET", "/background-task", None),
        ("GET", "/background-task/qtask_x", None),
        ("POST", "/auth/app-portal-access/shop", {}),
        ("POST", "/auth/app/shop/expire-all", {}),
        ("POST", "/app/shop/msg", {"eventType": "user.signup", "payload": {}}),
        ("POST", "/app/shop/msg/precheck/active", {"eventType": "user.signup"}),
        ("DELETE", "/app/shop/msg/evt-1/content", None),
        ("POST", "/app/shop/msg/expunge-all-contents", None),
    ],
)
def test_app_token_gets_403_outside_its_table(
    client: FlaskClient,
    application: Application,
    message: Message,
    portal_headers: Headers,
    method: str,
    path: str,
    body: Any,
) -> None:
    response = client.open(V + path, method=method, json=body, headers=portal_headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "insufficient_access"
    assert db.session.get(Message, message.id) is not None
    assert db.session.get(Application, application.id) is not None


def test_app_token_cannot_create_messages(
    client: FlaskClient, application: Application, endpoint: Endpoint, portal_headers: Headers
) -> None:
    body = {"eventType": "user.signup", "payload": {"a": 1}}
    response = client.post(f"{V}/app/shop/msg", json=body, headers=portal_headers)
    assert response.status_code == 403
    assert db.session.scalars(select(Message)).all() == []


def _url(rule: Any, names: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: names[m.group(1)], rule.rule)


def test_every_api_route_is_in_the_table_or_denied_to_app_tokens(
    app: Flask,
    client: FlaskClient,
    application: Application,
    endpoint: Endpoint,
    message: Message,
) -> None:
    names = {
        "app_id": "shop",
        "endpoint_id": endpoint.id,
        "msg_id": message.id,
        "attempt_id": "atmpt_x",
        "task_id": "qtask_x",
        "event_type_name": "user.signup",
    }
    checked, routes = 0, set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(V) or rule.endpoint in PUBLIC:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.add((rule.endpoint, method))
            headers = app_token_headers(application)  # a fresh one: logout revokes its token
            response = client.open(_url(rule, names), method=method, json={}, headers=headers)
            allowed = capabilities.rule_for(rule.endpoint, method) is not None
            denied = (
                response.status_code == 403 and response.get_json()["code"] == "insufficient_access"
            )
            assert denied != allowed, (rule.rule, method, response.status_code)
            checked += 1
    assert checked >= 50
    assert set(capabilities.RULES) <= routes  # no entry for a route that does not exist
    scoped = [key for key, (_, scope) in capabilities.RULES.items() if scope == capabilities.APP]
    rules = {r.endpoint: r.rule for r in app.url_map.iter_rules()}
    assert all("app_id>" in rules[endpoint] for endpoint, _ in scoped)


# -- capabilities ------------------------------------------------------------------------------

ACTIONS: dict[str, tuple[str, str, Any, int]] = {
    "list endpoints": ("GET", "/app/shop/endpoint", None, 200),
    "read message": ("GET", "/app/shop/msg/evt-1", None, 200),
    "read secret": ("GET", "/app/shop/endpoint/ep-a/secret", None, 200),
    "rotate secret": ("POST", "/app/shop/endpoint/ep-a/secret/rotate", {}, 200),
    "create endpoint": ("POST", "/app/shop/endpoint", {"url": "https://example.com/n"}, 201),
    "patch endpoint": ("PATCH", "/app/shop/endpoint/ep-a", {"description": "d"}, 200),
    "put headers": ("PUT", "/app/shop/endpoint/ep-a/headers", {"headers": {"x-a": "1"}}, 204),
    "delete endpoint": ("DELETE", "/app/shop/endpoint/ep-a", None, 204),
    "resend": ("POST", "/app/shop/msg/evt-1/endpoint/ep-a/resend", None, 202),
    "replay missing": ("POST", "/app/shop/endpoint/ep-a/replay-missing", "SINCE", 202),
    "recover": ("POST", "/app/shop/endpoint/ep-a/recover", "SINCE", 202),
}
# (action, capabilities that lack what it needs, capabilities that have it)
CASES = [
    ("list endpoints", (), ("ViewBase",)),
    ("read message", ("CreateAttempts",), ("ViewBase",)),
    ("read secret", ("ViewBase",), ("ViewBase", "ViewEndpointSecret")),
    ("read secret", ("ViewBase", "CreateAttempts"), ("ViewBase", "ManageEndpointSecret")),
    ("read secret", ("ViewBase",), ("ViewBase", "ManageEndpoint")),
    ("rotate secret", ("ViewBase", "ViewEndpointSecret"), ("ViewBase", "ManageEndpointSecret")),
    ("rotate secret", ("ViewBase", "CreateAttempts"), ("ViewBase", "ManageEndpoint")),
    ("create endpoint", ("ViewBase", "ManageEndpointSecret"), ("ViewBase", "ManageEndpoint")),
    ("patch endpoint", ("ViewBase", "CreateAttempts"), ("ViewBase", "ManageEndpoint")),
    ("put headers", ("ViewBase", "ViewEndpointSecret"), ("ViewBase", "ManageEndpoint")),
    ("delete endpoint", ("ViewBase", "CreateAttempts"), ("ViewBase", "ManageEndpoint")),
    ("resend", ("ViewBase", "ManageEndpoint"), ("ViewBase", "CreateAttempts")),
    ("replay missing", ("ViewBase", "ManageEndpoint"), ("ViewBase", "CreateAttempts")),
    ("recover", ("ViewBase", "ManageEndpoint"), ("ViewBase", "CreateAttempts")),
]


@pytest.mark.parametrize(("action", "without", "with_"), CASES, ids=lambda v: str(v))
def test_each_capability_is_needed_and_enough(
    client: FlaskClient,
    application: Application,
    endpoint: Endpoint,
    message: Message,
    action: str,
    without: tuple[str, ...],
    with_: tuple[str, ...],
) -> None:
    method, path, body, success = ACTIONS[action]
    if body == "SINCE":
        body = {"since": (utcnow() - timedelta(hours=1)).isoformat()}
    denied = client.open(
        V + path, method=method, json=body, headers=app_token_headers(application, without)
    )
    assert denied.status_code == 403, denied.get_json()
    assert denied.get_json()["code"] == "insufficient_access"
    allowed = client.open(
        V + path, method=method, json=body, headers=app_token_headers(application, with_)
    )
    assert allowed.status_code == success, allowed.get_json()


def test_read_only_token_reads_but_changes_nothing(
    client: FlaskClient, auth_headers: Headers, application: Application, endpoint: Endpoint
) -> None:
    token = client.post(
        f"{V}/auth/app-portal-access/shop", json={"readOnly": True}, headers=auth_headers
    ).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{V}/app/shop/endpoint/ep-a", headers=headers).status_code == 200
    assert client.get(f"{V}/app/shop/endpoint/ep-a/secret", headers=headers).status_code == 403
    patch = client.patch(f"{V}/app/shop/endpoint/ep-a", json={"disabled": True}, headers=headers)
    assert patch.status_code == 403
    db.session.refresh(endpoint)
    assert endpoint.disabled is False


# -- the event-type catalog --------------------------------------------------------------------


@pytest.fixture
def catalog(org_id: str) -> None:
    for name, flag in (("user.signup", None), ("beta.thing", "beta"), ("alpha.thing", "alpha")):
        db.session.add(EventType(org_id=org_id, name=name, description="", feature_flag=flag))
    db.session.commit()


def _names(response: Any) -> list[str]:
    return [item["name"] for item in response.get_json()["data"]]


def test_event_type_list_hides_types_of_flags_the_token_lacks(
    client: FlaskClient, auth_headers: Headers, application: Application, catalog: None
) -> None:
    everything = client.get(f"{V}/event-type", headers=auth_headers)
    assert _names(everything) == ["alpha.thing", "beta.thing", "user.signup"]
    plain = client.get(f"{V}/event-type", headers=app_token_headers(application))
    assert _names(plain) == ["user.signup"]
    beta = app_token_headers(application, feature_flags=("beta",))
    assert _names(client.get(f"{V}/event-type", headers=beta)) == ["beta.thing", "user.signup"]


def test_event_type_get_is_404_for_a_flag_the_token_lacks(
    client: FlaskClient, application: Application, catalog: None
) -> None:
    plain = app_token_headers(application)
    assert client.get(f"{V}/event-type/user.signup", headers=plain).status_code == 200
    assert client.get(f"{V}/event-type/beta.thing", headers=plain).status_code == 404
    beta = app_token_headers(application, feature_flags=("beta",))
    assert client.get(f"{V}/event-type/beta.thing", headers=beta).status_code == 200


def test_event_type_catalog_needs_view_base(
    client: FlaskClient, application: Application, catalog: None
) -> None:
    response = client.get(f"{V}/event-type", headers=app_token_headers(application, ()))
    assert response.status_code == 403


# -- expiry and revocation ---------------------------------------------------------------------


def test_expired_app_token_is_401(client: FlaskClient, application: Application) -> None:
    with freeze_time("2026-05-01 10:00:00") as clock:
        headers = app_token_headers(application, expiry=3600)
        assert client.get(f"{V}/app/shop", headers=headers).status_code == 200
        clock.tick(3599)
        assert client.get(f"{V}/app/shop", headers=headers).status_code == 200
        clock.tick(1)
        response = client.get(f"{V}/app/shop", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"code": "authentication_failed", "detail": "Invalid token"}


def test_app_tokens_are_never_cached(app: Flask, application: Application) -> None:
    assert app.config["AUTH_CACHE_SECONDS"] > 0
    _, plain = tokens.create_app_token(application, ["ViewBase"], [], 3600)
    assert tokens.authenticate(plain) is not None
    db.session.execute(AppPortalToken.__table__.delete())
    assert tokens.authenticate(plain) is None  # the org-token cache would still answer here
    assert not any(p.is_app_token for p, _ in tokens._CACHE.values())


def expire_all(client: FlaskClient, headers: Headers, app_id: str, **body: Any) -> Any:
    return client.post(f"{V}/auth/app/{app_id}/expire-all", json=body, headers=headers)


def test_expire_all_revokes_the_apps_tokens_at_once(
    client: FlaskClient,
    auth_headers: Headers,
    application: Application,
    other_app: Application,
) -> None:
    first, second = app_token_headers(application), app_token_headers(application)
    theirs = app_token_headers(other_app)
    assert client.get(f"{V}/app/shop", headers=first).status_code == 200  # seen once
    response = expire_all(client, auth_headers, "shop")
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"{V}/app/shop", headers=first).status_code == 401
    assert client.get(f"{V}/app/shop", headers=second).status_code == 401
    assert client.get(f"{V}/app/other", headers=theirs).status_code == 200
    assert client.get(f"{V}/app", headers=auth_headers).status_code == 200  # org token lives


def test_expire_all_with_expiry_leaves_a_grace_period(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    with freeze_time("2026-05-01 10:00:00") as clock:
        headers = app_token_headers(application, expiry=7200)
        assert expire_all(client, auth_headers, application.id, expiry=60).status_code == 204
        clock.tick(59)
        assert client.get(f"{V}/app/shop", headers=headers).status_code == 200
        clock.tick(1)
        assert client.get(f"{V}/app/shop", headers=headers).status_code == 401


def test_expire_all_never_lengthens_a_token(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    with freeze_time("2026-05-01 10:00:00") as clock:
        headers = app_token_headers(application, expiry=3600)
        assert expire_all(client, auth_headers, "shop", expiry=259200).status_code == 204
        clock.tick(3600)
        assert client.get(f"{V}/app/shop", headers=headers).status_code == 401


def test_expire_all_with_session_ids_expires_only_those(
    client: FlaskClient, auth_headers: Headers, application: Application
) -> None:
    alice = app_token_headers(application, session_id="alice")
    bob = app_token_headers(application, session_id="bob")
    anonymous = app_token_headers(application)
    assert expire_all(client, auth_headers, "shop", sessionIds=["alice"]).status_code == 204
    assert client.get(f"{V}/app/shop", headers=alice).status_code == 401
    assert client.get(f"{V}/app/shop", headers=bob).status_code == 200
    assert client.get(f"{V}/app/shop", headers=anonymous).status_code == 200


@pytest.mark.parametrize(
    "body", [{"expiry": -1}, {"expiry": 259201}, {"sessionIds": ["bad id"]}, {"expiry": "x"}]
)
def test_expire_all_bad_body_is_422(
    client: FlaskClient, auth_headers: Headers, application: Application, body: dict[str, Any]
) -> None:
    response = expire_all(client, auth_headers, "shop", **body)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][1] in body


def test_expire_all_of_unknown_app_is_404(client: FlaskClient, auth_headers: Headers) -> None:
    assert expire_all(client, auth_headers, "nobody").status_code == 404


def test_logout_revokes_the_app_token(
    app: Flask, client: FlaskClient, application: Application, portal_headers: Headers
) -> None:
    assert client.get(f"{V}/app/shop", headers=portal_headers).status_code == 200
    response = client.post(f"{V}/auth/logout", headers=portal_headers)
    assert response.status_code == 204
    after = client.get(f"{V}/app/shop", headers=portal_headers)
    assert after.status_code == 401  # at once, whatever AUTH_CACHE_SECONDS says
    assert client.post(f"{V}/auth/logout", headers=portal_headers).status_code == 401


def test_logout_of_one_app_token_keeps_the_others(
    client: FlaskClient, application: Application, portal_headers: Headers
) -> None:
    other = app_token_headers(application)
    assert client.post(f"{V}/auth/logout", headers=portal_headers).status_code == 204
    assert client.get(f"{V}/app/shop", headers=other).status_code == 200


def test_logout_with_org_token_keeps_it_working(client: FlaskClient, auth_headers: Headers) -> None:
    assert client.post(f"{V}/auth/logout", headers=auth_headers).status_code == 204
    assert client.get(f"{V}/app", headers=auth_headers).status_code == 200


def test_org_token_shaped_like_an_app_token_is_401(
    client: FlaskClient, application: Application
) -> None:
    response = client.get(f"{V}/app/shop", headers={"Authorization": "Bearer appsk_nothing"})
    assert response.status_code == 401


def test_granting_a_token_deletes_the_apps_long_expired_ones(
    application: Application, other_app: Application
) -> None:
    with freeze_time("2026-05-01 10:00:00") as clock:
        old, _ = tokens.create_app_token(application, ["ViewBase"], [], 3600)
        recent, _ = tokens.create_app_token(application, ["ViewBase"], [], 7200)
        theirs, _ = tokens.create_app_token(other_app, ["ViewBase"], [], 3600)
        old_id, recent_id, theirs_id = old.id, recent.id, theirs.id
        clock.tick(3600 + 24 * 3600 + 1)  # `old` expired a day ago, `recent` less than that
        tokens.create_app_token(application, ["ViewBase"], [], 3600)
    left = set(db.session.scalars(select(AppPortalToken.id)))
    assert old_id not in left and {recent_id, theirs_id} <= left
