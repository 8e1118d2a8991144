"""The consumer app portal (/portal/) in a real browser against the real stack (issue 12):
managing endpoints, sending, failing, resending and rotating, the event catalog, a phone.

Each test opens the link POST /api/v1/auth/app-portal-access answers, drives the page like a
person would (clicks, or only the keyboard) and checks the outcome where it lands: at a local
receiver (signatures verified with `standardwebhooks`), in the API and on the page.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    EVENT_TYPES,
    PHONE,
    Org,
    log_rows,
    needs_chromium,
    open_row,
    screenshot,
    verified,
    wait_for_rows,
)
from tests.support import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

EXAMPLES = EVENT_TYPES["order.paid"]["schemas"]["1"]["examples"]


def test_portal_adds_endpoint_sends_example_resends_and_rotates_secret(
    org: Org, receiver: Receiver, new_page: Callable[..., Page]
) -> None:
    shop = org.application("Acme Shop", "acme")
    link = org.portal_link(shop["id"])
    assert link["url"].endswith(f"/portal/#key={link['token']}")
    page = new_page()
    page.goto(link["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Endpoints")
    expect(page.get_by_text("No endpoints yet")).to_be_visible()
    expect(page.locator("#app-name")).to_have_text("Acme Shop")
    assert "key=" not in page.url  # the key does not stay in the address bar or history
    screenshot(page, "endpoints-empty")

    page.get_by_role("link", name="Add endpoint").click()
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Description").fill("Order events")
    page.get_by_label("order.paid").check()
    page.get_by_label("Rate limit").fill("50")
    screenshot(page, "endpoint-form")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)
    [created] = org.ok("GET", f"/app/{shop['id']}/endpoint")["data"]
    assert (created["description"], created["eventTypes"], created["throttleRate"]) == (
        "Order events",
        ["order.paid"],
        50,
    )

    page.get_by_label("Header name").fill("X-Shop")
    page.get_by_label("Value", exact=True).fill("acme")
    page.get_by_role("button", name="Save header").click()
    expect(page.get_by_role("cell", name="X-Shop")).to_be_visible()
    page.get_by_role("button", name="Reveal secret").click()
    secret = page.locator("[data-secret]").inner_text()
    assert secret.startswith("whsec_")
    assert secret == org.ok("GET", f"/app/{shop['id']}/endpoint/{created['id']}/secret")["key"]
    page.get_by_role("button", name="Hide secret").click()
    expect(page.locator("[data-secret]")).to_have_count(0)
    page.get_by_role("button", name="Reveal secret").click()
    expect(page.locator("[data-secret]")).to_have_text(secret)

    # an example arrives, signed, with the custom header, and is logged as a success
    page.get_by_label("Event type").select_option("order.paid")
    page.get_by_label("Example", exact=True).select_option(label="Example 1")
    page.get_by_role("button", name="Send example").click()
    first = receiver.wait_for(1)[0]
    assert verified(secret, first) == EXAMPLES[0]
    assert first.headers["x-shop"] == "acme"
    row = open_row(wait_for_rows(page, "Succeeded", 1).first)
    expect(row.locator("[data-role=request]")).to_contain_text('"ord_1"')
    expect(row.locator("[data-role=response]")).to_have_text("ok")
    expect(row).to_contain_text("HTTP 200")
    expect(row).to_contain_text(" ms")
    screenshot(page, "endpoint")

    # the receiver fails: the page shows the failed attempt; fixed, a resend succeeds
    receiver.status = 500
    page.get_by_label("Example", exact=True).select_option(label="Example 2")
    page.get_by_role("button", name="Send example").click()
    second = receiver.wait_for(2)[1]
    assert verified(secret, second) == EXAMPLES[1]
    page.get_by_label("Status").select_option(label="Failed")
    failed = open_row(wait_for_rows(page, "Failed", 1).first)
    expect(page.locator("details.log")).to_have_count(1)  # the filter holds failures only
    expect(failed).to_contain_text("HTTP 500")
    expect(failed.locator("[data-role=request]")).to_contain_text('"ord_2"')
    screenshot(page, "log-failed")
    receiver.status = 200
    failed.get_by_role("button", name="Resend").click()
    third = receiver.wait_for(3)[2]
    assert third.headers["webhook-id"] == second.headers["webhook-id"]  # the same message
    assert verified(secret, third) == EXAMPLES[1]
    page.get_by_label("Status").select_option(label="All statuses")
    wait_for_rows(page, "Succeeded", 2)
    expect(log_rows(page, "Failed")).to_have_count(1)

    # rotated in the page, the secret signs the next delivery
    page.get_by_role("button", name="Rotate secret").click()
    page.get_by_role("button", name="Rotate secret").click()  # "Replace the signing secret?"
    expect(page.locator("[data-secret]")).not_to_have_text(secret)
    rotated = page.locator("[data-secret]").inner_text()
    assert rotated.startswith("whsec_")
    page.get_by_role("button", name="Send example").click()
    fourth = receiver.wait_for(4)[3]
    assert verified(rotated, fourth) == EXAMPLES[1]

    # the stats, after a reload (the key is kept in the tab's sessionStorage)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(receiver.url)
    expect(page.locator(".stat-success .stat-n")).not_to_have_text("0")
    page.get_by_label("Show").select_option(label="Messages")
    expect(page.locator("details.log")).to_have_count(3)
    since = page.get_by_label("Failed since")
    assert since.input_value()  # a day ago by default
    page.get_by_role("button", name="Recover failed messages").click()
    expect(page.get_by_text("Recovery started")).to_be_visible()


def test_portal_edits_disables_and_deletes_an_endpoint(
    org: Org, receiver: Receiver, new_page: Callable[..., Page]
) -> None:
    shop = org.application("Acme Shop", "acme")
    keep = org.endpoint(shop["id"], f"{receiver.url}/billing", description="Billing system")
    doomed = org.endpoint(shop["id"], f"{receiver.url}/crm", eventTypes=["order.refunded"])
    page = new_page()
    page.goto(org.portal_link(shop["id"])["url"])
    expect(page.get_by_role("link", name=keep["url"])).to_be_visible()
    expect(page.get_by_role("row", name=doomed["url"])).to_contain_text("order.refunded")
    screenshot(page, "endpoints")

    page.get_by_role("link", name=doomed["url"]).click()
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("order.refunded")).to_be_checked()
    page.get_by_label("Description").fill("CRM sync")
    page.get_by_label("order.refunded").uncheck()
    page.get_by_label("Channels").fill("eu, vip")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("CRM sync")).to_be_visible()
    edited = org.ok("GET", f"/app/{shop['id']}/endpoint/{doomed['id']}")
    assert (edited["eventTypes"], edited["channels"]) == (None, ["eu", "vip"])

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    assert org.ok("GET", f"/app/{shop['id']}/endpoint/{doomed['id']}")["disabled"] is True
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("button", name="Disable")).to_be_visible()
    assert org.ok("GET", f"/app/{shop['id']}/endpoint/{doomed['id']}")["disabled"] is False

    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Delete this endpoint?")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Endpoints")
    expect(page.get_by_role("link", name=doomed["url"])).to_have_count(0)
    assert org.call("GET", f"/app/{shop['id']}/endpoint/{doomed['id']}").status_code == 404
    assert org.call("GET", f"/app/{shop['id']}/endpoint/{keep['id']}").status_code == 200


def test_portal_catalog_shows_event_types_schemas_and_examples(
    org: Org, new_page: Callable[..., Page]
) -> None:
    shop = org.application("Acme Shop", "acme")
    page = new_page()
    page.goto(org.portal_link(shop["id"])["url"])
    page.get_by_role("link", name="Event catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Event catalog")
    paid = page.locator("[data-event-type='order.paid']")
    expect(paid).to_contain_text("An order was paid")
    paid.get_by_text("Example 2").click()
    expect(paid.locator("pre").nth(1)).to_contain_text('"ord_2"')
    paid.get_by_text("JSON Schema (version 1)").click()
    expect(paid.locator("pre").nth(2)).to_contain_text('"required"')
    refunded = page.locator("[data-event-type='order.refunded']")
    expect(refunded).to_contain_text("An order was refunded in full")
    screenshot(page, "catalog")


def test_portal_pages_through_a_long_log(
    org: Org, receiver: Receiver, new_page: Callable[..., Page]
) -> None:
    """25 attempts: the log shows the newest 20, "Older" the other 5, "Newer" the 20 again."""
    shop = org.application("Acme Shop", "acme")
    ep = org.endpoint(shop["id"], f"{receiver.url}/paged")
    for n in range(25):
        org.ok("POST", f"/app/{shop['id']}/msg", {"eventType": "order.paid", "payload": {"n": n}})
    receiver.wait_for(25)
    page = new_page()
    page.goto(org.portal_link(shop["id"])["url"])
    page.get_by_role("link", name=ep["url"]).click()
    first = wait_for_rows(page, "Succeeded", 20)
    expect(first).to_have_count(20)
    newest = first.first.get_attribute("data-id")
    page.get_by_role("button", name="Older →").click()
    expect(log_rows(page, "Succeeded")).to_have_count(5)
    expect(page.get_by_role("button", name="Older →")).to_have_count(0)
    older = {log_rows(page, "Succeeded").nth(i).get_attribute("data-id") for i in range(5)}
    assert newest not in older
    page.get_by_role("button", name="← Newer").click()
    expect(log_rows(page, "Succeeded")).to_have_count(20)
    assert log_rows(page, "Succeeded").first.get_attribute("data-id") == newest


def test_portal_at_phone_width_is_usable_with_the_keyboard_only(
    org: Org, receiver: Receiver, new_page: Callable[..., Page]
) -> None:
    shop = org.application("Acme Shop", "acme")
    for n in range(2):
        org.endpoint(
            shop["id"],
            f"{receiver.url}/a-rather-long-path/that-keeps-going/{n}?token=abcdefghijklmnop",
            description="An endpoint with a long URL",
        )
    page = new_page(viewport=PHONE)
    page.goto(org.portal_link(shop["id"])["url"])
    expect(page.locator("a.ep-url")).to_have_count(2)
    assert no_horizontal_scroll(page)
    screenshot(page, "phone")

    focused = tab_to(page, "Add endpoint")
    assert focused["outline"] != "none", "the focused element shows no focus ring"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add endpoint")
    assert no_horizontal_scroll(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "url"
    page.keyboard.type(f"{receiver.url}/from-keyboard")
    tab_to(page, "order.refunded")
    page.keyboard.press("Space")
    tab_to(page, "Create endpoint")
    screenshot(page, "phone-form")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{receiver.url}/from-keyboard")
    assert no_horizontal_scroll(page)
    screenshot(page, "phone-endpoint")
    tab_to(page, "Send example")
    page.keyboard.press("Enter")
    assert verified(secret_of(org, shop["id"]), receiver.wait_for(1)[0]) == {
        "id": "ord_1",
        "reason": "damaged",
    }
    row = wait_for_rows(page, "Succeeded", 1).first
    row.locator("summary").focus()
    page.keyboard.press("Enter")  # a log row opens from the keyboard too
    expect(row.locator("[data-role=response]")).to_have_text("ok")
    assert no_horizontal_scroll(page)
    screenshot(page, "phone-log")
    made = org.ok("GET", f"/app/{shop['id']}/endpoint")["data"]
    assert [e["eventTypes"] for e in made if "keyboard" in e["url"]] == [["order.refunded"]]


def secret_of(org: Org, app_id: str) -> str:
    """The signing secret of the application's newest endpoint (read with the org token)."""
    newest = org.ok("GET", f"/app/{app_id}/endpoint")["data"][0]
    key: str = org.ok("GET", f"/app/{app_id}/endpoint/{newest['id']}/secret")["key"]
    return key


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def tab_to(page: Page, text: str, limit: int = 40) -> dict[str, str]:
    """Press Tab until the focused element's text, value or label is `text`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused: dict[str, str] = page.evaluate(
            """() => {
              const el = document.activeElement;
              const label = el.labels && el.labels[0] ? el.labels[0].innerText : "";
              return { text: (el.innerText || el.value || "").trim(), label,
                       outline: getComputedStyle(el).outlineStyle };
            }"""
        )
        if focused["text"] == text or focused["label"].split("\n")[0].strip() == text:
            return focused
    raise AssertionError(f"{text!r} is not reachable with Tab ({limit} presses)")
