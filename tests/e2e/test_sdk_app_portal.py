"""The unmodified `svix` SDK against a live Herald: app portal links, the app-scoped token they
carry, send-example to one endpoint, expire-all and logout."""

from __future__ import annotations

import json
import time

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationTokenExpireIn,
    AppPortalAccessIn,
    AppPortalCapability,
    EndpointIn,
    EventExampleIn,
    EventTypeIn,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

from tests.support import Receiver

EXAMPLE = {"user": "zoë", "plan": "pro"}


def as_portal(server: str, token: str) -> Svix:
    """The SDK acting with an app portal token (its own retries off)."""
    return Svix(token, SvixOptions(server_url=server, retry_schedule=[], timeout=10))


def status_of(excinfo: pytest.ExceptionInfo[HttpError]) -> int:
    return int(excinfo.value.status_code)


def test_sdk_portal_link_token_send_example_and_revocation(
    sdk: Svix, live_server: str, receiver: Receiver, celery_worker: object
) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    sdk.event_type.create(
        EventTypeIn(
            name="user.signup",
            description="A user signed up",
            schemas={"1": {"type": "object", "examples": [EXAMPLE]}},
        )
    )
    target = sdk.endpoint.create("shop", EndpointIn(url=f"{receiver.url}/a", uid="a"))
    sdk.endpoint.create("shop", EndpointIn(url=f"{receiver.url}/b", uid="b"))

    access = sdk.authentication.app_portal_access(
        "shop",
        AppPortalAccessIn(
            capabilities=[AppPortalCapability.VIEW_BASE, AppPortalCapability.CREATE_ATTEMPTS],
            expiry=3600,
            session_id="user_1",
        ),
    )
    assert access.token.startswith("appsk_")
    assert access.url == f"{live_server}/portal/#key={access.token}"

    portal = as_portal(live_server, access.token)
    assert {e.uid for e in portal.endpoint.list("shop").data} == {"a", "b"}
    with pytest.raises(HttpError) as forbidden:
        portal.endpoint.get_secret("shop", "a")  # no ViewEndpointSecret
    assert status_of(forbidden) == 403
    with pytest.raises(HttpError) as org_wide:
        portal.application.list()
    assert status_of(org_wide) == 403

    sent = portal.endpoint.send_example("shop", target.id, EventExampleIn(event_type="user.signup"))
    assert sent.payload == EXAMPLE and sent.event_type == "user.signup"
    got = receiver.wait_for(1)[0]
    assert got.path == "/hook/a" and json.loads(got.body) == EXAMPLE
    time.sleep(1.0)  # a delivery to endpoint b would have arrived by now
    assert [r.path for r in receiver.requests] == ["/hook/a"]

    sdk.authentication.expire_all("shop", ApplicationTokenExpireIn(session_ids=["user_1"]))
    with pytest.raises(HttpError) as expired:
        portal.endpoint.list("shop")
    assert status_of(expired) == 401


def test_sdk_portal_access_creates_the_app_and_logout_revokes(sdk: Svix, live_server: str) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))  # another app of the org
    access = sdk.authentication.app_portal_access(
        "newco", AppPortalAccessIn(application=ApplicationIn(name="NewCo"), read_only=True)
    )
    assert sdk.application.get("newco").name == "NewCo"
    portal = as_portal(live_server, access.token)
    assert portal.application.get("newco").uid == "newco"
    with pytest.raises(HttpError) as other_app:
        portal.application.get("shop")
    assert status_of(other_app) == 404
    portal.authentication.logout()
    with pytest.raises(HttpError) as after:
        portal.application.get("newco")
    assert status_of(after) == 401
    sdk.authentication.logout()  # an org token's logout changes nothing
    assert sdk.application.get("newco").name == "NewCo"


def test_sdk_portal_access_refuses_manage_transformations(sdk: Svix) -> None:
    sdk.application.create(ApplicationIn(name="Shop", uid="shop"))
    with pytest.raises(HTTPValidationError) as excinfo:
        sdk.authentication.app_portal_access(
            "shop",
            AppPortalAccessIn(
                capabilities=[
                    AppPortalCapability.VIEW_BASE,
                    AppPortalCapability.MANAGE_TRANSFORMATIONS,
                ]
            ),
        )
    assert "ManageTransformations" in str(excinfo.value.detail)
