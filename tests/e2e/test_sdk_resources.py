"""The unmodified `svix` SDK against a live Herald: applications, event types and endpoints.

Every call of `svix.application`, `svix.event_type` and the endpoint resource calls that Herald
owns here (CRUD, upsert, secret, headers) is made at least once, with their error paths.
"""

from __future__ import annotations

import asyncio

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointListOptions,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventTypeDeleteOptions,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    Ordering,
    Svix,
    SvixAsync,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

SCHEMA = {"1": {"type": "object", "properties": {"id": {"type": "integer"}}}}


def test_sdk_application_calls(sdk: Svix) -> None:
    created = sdk.application.create(ApplicationIn(name="Acme", uid="acme", metadata={"a": "b"}))
    assert created.id.startswith("app_") and created.metadata == {"a": "b"}
    assert sdk.application.get("acme").id == created.id == sdk.application.get(created.id).id
    assert sdk.application.get_or_create(ApplicationIn(name="x", uid="acme")).id == created.id
    fresh = sdk.application.get_or_create(ApplicationIn(name="Fresh", uid="fresh"))
    assert fresh.id != created.id and fresh.uid == "fresh"

    upserted = sdk.application.upsert("beta", ApplicationIn(name="Beta", throttle_rate=5))
    assert (upserted.uid, upserted.throttle_rate) == ("beta", 5)
    renamed = sdk.application.upsert(upserted.id, ApplicationIn(name="Beta 2", uid="beta"))
    assert (renamed.id, renamed.name, renamed.throttle_rate) == (upserted.id, "Beta 2", None)

    patched = sdk.application.patch("acme", ApplicationPatch(uid=None, name="Acme Inc"))
    assert (patched.id, patched.uid, patched.name) == (created.id, None, "Acme Inc")
    assert patched.metadata == {"a": "b"}

    ids = sorted([created.id, fresh.id, upserted.id])
    first = sdk.application.list(ApplicationListOptions(limit=2))
    assert [a.id for a in first.data] == ids[:2] and first.done is False
    second = sdk.application.list(ApplicationListOptions(limit=2, iterator=first.iterator))
    assert [a.id for a in second.data] == ids[2:] and second.done is True
    back = sdk.application.list(ApplicationListOptions(limit=2, iterator=second.prev_iterator))
    assert [a.id for a in back.data] == ids[:2]
    newest = sdk.application.list(ApplicationListOptions(order=Ordering.DESCENDING))
    assert [a.id for a in newest.data] == ids[::-1]

    sdk.application.delete(created.id)
    with pytest.raises(HttpError) as excinfo:
        sdk.application.get(created.id)
    assert (excinfo.value.status_code, excinfo.value.code) == (404, "not_found")


def test_sdk_event_type_calls(sdk: Svix) -> None:
    created = sdk.event_type.create(
        EventTypeIn(name="user.signup", description="Signed up", schemas=SCHEMA)
    )
    assert (created.name, created.deprecated, created.schemas) == ("user.signup", False, SCHEMA)
    with pytest.raises(HttpError) as excinfo:
        sdk.event_type.create(EventTypeIn(name="user.signup", description="again"))
    assert (excinfo.value.status_code, excinfo.value.code) == (409, "event_type_exists")
    assert sdk.event_type.get("user.signup").description == "Signed up"

    new = sdk.event_type.upsert("order.paid", EventTypeUpsertIn(description="Paid"))
    assert new.name == "order.paid"
    replaced = sdk.event_type.upsert(
        "order.paid", EventTypeUpsertIn(description="Paid!", deprecated=True)
    )
    assert (replaced.description, replaced.deprecated) == ("Paid!", True)
    patched = sdk.event_type.patch("user.signup", EventTypePatch(schemas=None, deprecated=True))
    assert (patched.schemas, patched.deprecated, patched.description) == (None, True, "Signed up")

    bare = sdk.event_type.list()  # the SDK always sends with_content=false
    assert [t.name for t in bare.data] == ["order.paid", "user.signup"]
    page = sdk.event_type.list(EventTypeListOptions(limit=1, with_content=True))
    assert [t.name for t in page.data] == ["order.paid"] and page.done is False
    rest = sdk.event_type.list(EventTypeListOptions(limit=1, iterator=page.iterator))
    assert [t.name for t in rest.data] == ["user.signup"] and rest.done is True

    sdk.event_type.delete("order.paid")
    assert [t.name for t in sdk.event_type.list().data] == ["user.signup"]
    archived = sdk.event_type.list(EventTypeListOptions(include_archived=True))
    assert [(t.name, t.archived) for t in archived.data] == [
        ("order.paid", True),
        ("user.signup", False),
    ]
    sdk.event_type.delete("order.paid", EventTypeDeleteOptions(expunge=True))
    with pytest.raises(HttpError) as missing:
        sdk.event_type.get("order.paid")
    assert missing.value.status_code == 404


def test_sdk_endpoint_calls(sdk: Svix) -> None:
    app = sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    sdk.event_type.create(EventTypeIn(name="user.signup", description="Signed up"))
    created = sdk.endpoint.create(
        "shop",
        EndpointIn(
            url="https://example.com/hook",
            uid="main",
            event_types=["user.signup"],
            channels=["eu"],
            metadata={"k": "v"},
            headers={"X-Team": "a"},
        ),
    )
    assert created.id.startswith("ep_") and created.event_types == ["user.signup"]
    assert sdk.endpoint.get(app.id, "main").id == created.id

    upserted = sdk.endpoint.upsert("shop", "backup", EndpointUpsertIn(url="https://b.example/h"))
    assert upserted.uid == "backup" and upserted.id != created.id
    replaced = sdk.endpoint.upsert(
        "shop",
        upserted.id,
        EndpointUpsertIn(url="https://c.example/h", uid="backup", disabled=True),
    )
    assert (replaced.id, replaced.url, replaced.disabled) == (
        upserted.id,
        "https://c.example/h",
        True,
    )
    patched = sdk.endpoint.patch(
        "shop", "main", EndpointPatch(event_types=None, channels=None, description="Main")
    )
    assert (patched.event_types, patched.channels, patched.description) == (None, None, "Main")
    assert patched.metadata == {"k": "v"}

    ids = sorted([created.id, upserted.id], reverse=True)  # newest first by default
    first = sdk.endpoint.list("shop", EndpointListOptions(limit=1))
    assert [e.id for e in first.data] == ids[:1] and first.done is False
    second = sdk.endpoint.list("shop", EndpointListOptions(limit=1, iterator=first.iterator))
    assert [e.id for e in second.data] == ids[1:] and second.done is True
    ascending = sdk.endpoint.list("shop", EndpointListOptions(order=Ordering.ASCENDING))
    assert [e.id for e in ascending.data] == ids[::-1]

    old_key = sdk.endpoint.get_secret("shop", "main").key
    assert old_key.startswith("whsec_")
    new_key = sdk.endpoint.rotate_secret("shop", "main", EndpointSecretRotateIn()).key
    assert new_key != old_key and sdk.endpoint.get_secret("shop", "main").key == new_key
    chosen = "whsec_" + "A" * 32
    rotated = sdk.endpoint.rotate_secret(
        "shop", "main", EndpointSecretRotateIn(key=chosen, grace_period_seconds=0)
    )
    assert rotated.key == chosen

    headers = sdk.endpoint.get_headers("shop", "main")
    assert (headers.headers, headers.sensitive) == ({"X-Team": "a"}, [])
    sdk.endpoint.set_headers(
        "shop",
        "main",
        EndpointHeadersIn(headers={"Authorization": "Bearer x", "X-Team": "b", "X-Gone": "1"}),
    )
    sdk.endpoint.patch_headers(
        "shop", "main", EndpointHeadersPatchIn(headers={"X-Extra": "c"}, delete_headers=["x-gone"])
    )
    headers = sdk.endpoint.get_headers("shop", "main")
    assert headers.headers == {"X-Team": "b", "X-Extra": "c"}
    assert headers.sensitive == ["Authorization"]

    sdk.endpoint.delete("shop", "main")
    with pytest.raises(HttpError) as excinfo:
        sdk.endpoint.get("shop", "main")
    assert excinfo.value.status_code == 404


def test_sdk_error_paths(sdk: Svix, live_server: str) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    with pytest.raises(HttpError) as conflict:
        sdk.application.create(ApplicationIn(name="Again", uid="shop"))
    assert (conflict.value.status_code, conflict.value.code) == (409, "conflict")

    with pytest.raises(HTTPValidationError) as bad_url:
        sdk.endpoint.create("shop", EndpointIn(url="ftp://example.com"))
    assert bad_url.value.status_code == 422
    assert bad_url.value.detail[0].loc == ["body", "url"]
    with pytest.raises(HTTPValidationError) as unknown:
        sdk.endpoint.create("shop", EndpointIn(url="https://e.io", event_types=["nope"]))
    assert unknown.value.detail[0].msg == "The following event types don't exist: nope"
    with pytest.raises(HTTPValidationError) as bad_schema:
        sdk.event_type.create(EventTypeIn(name="x", description="x", schemas={"1": {"type": 1}}))
    assert bad_schema.value.detail[0].loc == ["body", "schemas"]

    endpoint = sdk.endpoint.create("shop", EndpointIn(url="https://e.io/h"))
    for _ in range(10):
        sdk.endpoint.rotate_secret("shop", endpoint.id, EndpointSecretRotateIn())
    with pytest.raises(HttpError) as limit:
        sdk.endpoint.rotate_secret("shop", endpoint.id, EndpointSecretRotateIn())
    assert (limit.value.status_code, limit.value.code) == (400, "limit_reached")

    with pytest.raises(HttpError) as missing:
        sdk.endpoint.get_headers("shop", "nope")
    assert missing.value.status_code == 404

    stranger = Svix("hrld_wrong", SvixOptions(server_url=live_server, retry_schedule=[]))
    with pytest.raises(HttpError) as denied:
        stranger.application.list()
    assert (denied.value.status_code, denied.value.code) == (401, "authentication_failed")


def test_sdk_async_application_round_trip(live_server: str, api_token: str) -> None:
    async def scenario() -> list[str]:
        svix = SvixAsync(api_token, SvixOptions(server_url=live_server, retry_schedule=[]))
        app = await svix.application.create(ApplicationIn(name="Async", uid="async"))
        assert (await svix.application.get("async")).id == app.id
        listed = await svix.application.list()
        await svix.application.delete(app.id)
        return [a.id for a in listed.data]

    assert len(asyncio.run(scenario())) == 1


def test_sdk_health_and_logout(sdk: Svix, live_server: str) -> None:
    sdk.health.get()  # 204: the SDK accepts any 2xx
    sdk.authentication.logout()
    bad = Svix("not-a-token", SvixOptions(server_url=live_server, retry_schedule=[]))
    with pytest.raises(HttpError) as info:
        bad.authentication.logout()
    assert info.value.status_code == 401
