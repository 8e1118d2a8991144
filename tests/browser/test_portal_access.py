"""What an app portal link may do, in a real browser against the real stack (issue 12): a
ViewBase-only link, another application's data, an expired link, and the page in an iframe of
another site. The API is asked the same questions as the page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    Herald,
    Org,
    needs_chromium,
    open_row,
    screenshot,
    wait_for_rows,
)
from tests.support import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

EVERY_BUTTON = (
    "Add endpoint",
    "Edit",
    "Disable",
    "Delete",
    "Reveal secret",
    "Hide secret",
    "Rotate secret",
    "Save header",
    "Remove",
    "Send example",
    "Resend",
    "Recover failed messages",
)


def test_portal_view_base_token_sees_no_secret_and_no_edit_buttons(
    org: Org, receiver: Receiver, new_page: Callable[..., Page]
) -> None:
    shop = org.application("Acme Shop", "acme")
    ep = org.endpoint(shop["id"], receiver.url, description="Read only")
    one = f"/app/{shop['id']}/endpoint/{ep['id']}"
    org.ok("PATCH", f"{one}/headers", {"headers": {"X-Env": "prod"}})
    msg = org.ok("POST", f"/app/{shop['id']}/msg", {"eventType": "order.paid", "payload": {"n": 1}})
    receiver.wait_for(1)
    link = org.portal_link(shop["id"], capabilities=["ViewBase"])
    page = new_page()
    page.goto(link["url"])
    expect(page.get_by_role("link", name=receiver.url)).to_be_visible()
    page.get_by_role("link", name=receiver.url).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)
    expect(page.get_by_role("cell", name="prod")).to_be_visible()  # headers: read only
    open_row(wait_for_rows(page, "Succeeded", 1).first)
    for name in EVERY_BUTTON:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("heading", name="Signing secret")).to_have_count(0)
    expect(page.locator("[data-secret]")).to_have_count(0)
    screenshot(page, "read-only")
    page.evaluate("location.hash = '#/endpoints/new'")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")

    # and the API refuses the same operations to that token
    base = f"/app/{shop['id']}"
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for method, path, body in [
        ("GET", f"{one}/secret", None),
        ("POST", f"{one}/secret/rotate", {}),
        ("POST", f"{base}/endpoint", {"url": receiver.url}),
        ("PATCH", one, {"description": "changed"}),
        ("PUT", one, {"url": receiver.url}),
        ("DELETE", one, None),
        ("PATCH", f"{one}/headers", {"headers": {"X-Env": "dev"}}),
        ("POST", f"{one}/send-example", {"eventType": "order.paid"}),
        ("POST", f"{base}/msg/{msg['id']}/endpoint/{ep['id']}/resend", None),
        ("POST", f"{one}/recover", {"since": since}),
    ]:
        response = org.call(method, path, token=link["token"], json=body)
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
    assert org.call("GET", one, token=link["token"]).status_code == 200
    after = org.ok("GET", one)
    assert (after["description"], after["url"]) == ("Read only", receiver.url)
    assert org.ok("GET", f"{one}/headers")["headers"] == {"X-Env": "prod"}
    assert len(receiver.requests) == 1


def test_portal_token_of_one_app_cannot_reach_another(
    org: Org, receiver: Receiver, new_page: Callable[..., Page]
) -> None:
    mine = org.application("Shop A", "shop-a")
    other = org.application("Shop B", "shop-b")
    ep_mine = org.endpoint(mine["id"], f"{receiver.url}/a")
    ep_other = org.endpoint(other["id"], f"{receiver.url}/b", description="B's endpoint")
    token = org.portal_link(mine["id"])["token"]
    for app_ref in (other["id"], "shop-b"):
        for method, path, body in [
            ("GET", f"/app/{app_ref}", None),
            ("GET", f"/app/{app_ref}/endpoint", None),
            ("GET", f"/app/{app_ref}/endpoint/{ep_other['id']}", None),
            ("GET", f"/app/{app_ref}/endpoint/{ep_other['id']}/secret", None),
            ("POST", f"/app/{app_ref}/endpoint", {"url": receiver.url}),
            ("PATCH", f"/app/{app_ref}/endpoint/{ep_other['id']}", {"description": "mine"}),
            ("DELETE", f"/app/{app_ref}/endpoint/{ep_other['id']}", None),
            ("POST", f"/app/{app_ref}/endpoint/{ep_other['id']}/secret/rotate", {}),
        ]:
            response = org.call(method, path, token=token, json=body)
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
    # B's endpoint through A's path is not found either
    for app_ref in (mine["id"], "shop-a"):
        path = f"/app/{app_ref}/endpoint/{ep_other['id']}"
        assert org.call("GET", path, token=token).status_code == 404
        assert org.call("DELETE", path, token=token).status_code == 404
    assert org.ok("GET", f"/app/{other['id']}/endpoint/{ep_other['id']}")["description"] == (
        "B's endpoint"
    )
    assert len(org.ok("GET", f"/app/{other['id']}/endpoint")["data"]) == 1

    page = new_page()
    page.goto(f"{org.base_url}/portal/#key={token}")
    expect(page.get_by_role("link", name=ep_mine["url"])).to_be_visible()
    expect(page.get_by_role("link", name=ep_other["url"])).to_have_count(0)
    page.evaluate("id => { location.hash = '#/endpoint/' + id }", ep_other["id"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_text("B's endpoint")).to_have_count(0)


def test_portal_expired_link_shows_the_expired_screen(
    org: Org, receiver: Receiver, herald: Herald, new_page: Callable[..., Page]
) -> None:
    shop = org.application("Acme Shop", "acme")
    ep = org.endpoint(shop["id"], receiver.url)
    link = org.portal_link(shop["id"])
    page = new_page()
    page.goto(link["url"])
    expect(page.get_by_role("link", name=ep["url"])).to_be_visible()
    org.ok("POST", f"/auth/app/{shop['id']}/expire-all", {})
    page.get_by_role("link", name=ep["url"]).click()  # the next call answers 401
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    expect(page.locator("#nav")).to_be_hidden()
    screenshot(page, "expired")
    assert org.call("GET", f"/app/{shop['id']}/endpoint", token=link["token"]).status_code == 401
    page.reload()  # the expired key was forgotten
    expect(page.get_by_role("heading", level=1)).to_have_text("No access key")

    # a link that runs out while it is open: the page says so by itself at its expiry
    soon = org.portal_link(shop["id"])
    org.ok("POST", f"/auth/app/{shop['id']}/expire-all", {"expiry": 3})
    page.goto(soon["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    assert org.call("GET", "/auth/portal-session", token=soon["token"]).status_code == 401

    # a key that was never valid
    page.goto(f"{herald.base_url}/portal/#key=appsk_{'x' * 43}")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")


def test_portal_works_inside_an_iframe_of_another_site(
    org: Org, receiver: Receiver, new_page: Callable[..., Page], host_page: Callable[[str], str]
) -> None:
    shop = org.application("Acme Shop", "acme")
    ep = org.endpoint(shop["id"], receiver.url, description="Embedded")
    page = new_page()
    page.goto(host_page(org.portal_link(shop["id"])["url"]))
    portal = page.frame_locator("#portal")
    expect(portal.get_by_role("link", name=ep["url"])).to_be_visible()
    portal.get_by_role("link", name=ep["url"]).click()
    expect(portal.get_by_role("heading", level=1)).to_have_text(ep["url"])
    expect(portal.get_by_role("heading", name="Logs")).to_be_visible()
    screenshot(page, "iframe")
