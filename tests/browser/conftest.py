"""Fixtures of the browser tests: the real stack and Debian's chromium driven by Playwright.

- `herald`: gunicorn (`gunicorn.conf.py`, 2 workers) and a Celery worker + beat
  (tests/e2e/processes.py) on the suite's PostgreSQL database and a private, memory-only
  redis-server, once per module. Retries are an hour apart, so the only deliveries are the
  ones a test causes (a failed attempt is not retried behind its back).
- `browser`: /usr/bin/chromium, headless, never a downloaded browser; tests without it skip.
- `new_page`: a fresh browser context (its own sessionStorage) per call; afterwards every
  request any page made must have gone to 127.0.0.1, with no uncaught script error and no
  Content-Security-Policy violation.
- `org`: a committed org token and shortcuts to the API (rows truncated after the test).
- Page helpers: `screenshot`, the log rows of an endpoint's page, signature checks.
"""

from __future__ import annotations

import html
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from standardwebhooks.webhooks import Webhook

from api.services import tokens
from tests.conftest import DATABASE_URL
from tests.e2e.gunicorn_harness import ROOT, GunicornServer
from tests.e2e.processes import PrivateRedis, Stack
from tests.support import Received, eventually

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
)
SCREENSHOTS = ROOT / "var" / "screenshots"
DESKTOP = (1280, 900)
PHONE = (375, 800)
REQUEST_TIMEOUT = 30.0
TIMEOUT_MS = 20_000  # Playwright waits (its default 5 s is short for a loaded 2-core machine)
LOCAL = "127.0.0.1"  # every request the pages make must go here

# The catalog every test's org gets: two event types with JSON Schemas and examples.
EVENT_TYPES: dict[str, dict[str, Any]] = {
    "order.paid": {
        "description": "An order was paid",
        "schemas": {
            "1": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}},
                "required": ["id", "amount"],
                "examples": [
                    {"id": "ord_1", "amount": 1200, "currency": "EUR"},
                    {"id": "ord_2", "amount": 990, "currency": "USD"},
                ],
            }
        },
    },
    "order.refunded": {
        "description": "An order was refunded in full",
        "schemas": {
            "1": {
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "examples": [{"id": "ord_1", "reason": "damaged"}],
            }
        },
    },
}


@dataclass
class Herald:
    """The running stack: its base URL."""

    web: GunicornServer
    stack: Stack

    @property
    def base_url(self) -> str:
        return self.web.base_url


@pytest.fixture(scope="module")
def herald(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Herald]:
    """gunicorn + worker + beat on the (migrated) suite database and a private Redis."""
    tmp = tmp_path_factory.mktemp("portal")
    redis = PrivateRedis(tmp / "redis.log")
    settings = {"REDIS_URL": redis.url, "HERALD_RETRY_SCHEDULE": "3600"}
    web = GunicornServer(tmp / "run", app=None, workers=2, database_url=DATABASE_URL)
    web.env.update(settings)
    stack = Stack(redis.url, tmp)
    stack.env.update(settings)
    try:
        stack.start("worker")
        stack.start("beat")
        web.start()
        yield Herald(web, stack)
    finally:
        web.stop()
        stack.stop_all()
        for proc in redis.procs:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless (Playwright's own browsers are never downloaded)."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Browser, herald: Herald) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh contexts; checks what they requested and any script errors."""
    contexts = []
    seen: list[str] = []
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP: {message.text}")

    def make(viewport: tuple[int, int] = DESKTOP) -> Page:
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block"
        )
        context.on("request", lambda request: seen.append(request.url))
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        page.on("console", on_console)
        return page

    yield make
    for context in contexts:
        context.close()
    foreign = [u for u in seen if urlsplit(u).scheme != "data" and urlsplit(u).hostname != LOCAL]
    assert not foreign, f"the portal made third-party requests: {foreign}"
    assert not problems, "\n".join(problems)


def screenshot(page: Page, name: str) -> None:
    """var/screenshots/portal-<name>.png, for a reviewer's eyes."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"portal-{name}.png"), full_page=True)


@dataclass
class Org:
    """An org token on the running stack, and the API calls the tests set up with."""

    base_url: str
    token: str

    def call(
        self, method: str, path: str, *, token: str | None = None, json: Any = None
    ) -> requests.Response:
        """One API call (`token`: another bearer token, such as an app portal token)."""
        return requests.request(
            method,
            f"{self.base_url}/api/v1{path}",
            headers={"Authorization": f"Bearer {token or self.token}"},
            json=json,
            timeout=REQUEST_TIMEOUT,
        )

    def ok(self, method: str, path: str, json: Any = None) -> Any:
        """An org call that must succeed; its JSON (None for an empty body)."""
        response = self.call(method, path, json=json)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def application(self, name: str, uid: str) -> dict[str, Any]:
        """An application, with the catalog's event types in the org."""
        for event_type, body in EVENT_TYPES.items():
            if self.call("GET", f"/event-type/{event_type}").status_code == 404:
                self.ok("POST", "/event-type", {"name": event_type, **body})
        created: dict[str, Any] = self.ok("POST", "/app", {"name": name, "uid": uid})
        return created

    def endpoint(self, app_id: str, url: str, **fields: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.ok("POST", f"/app/{app_id}/endpoint", {"url": url, **fields})
        return created

    def portal_link(self, app_id: str, capabilities: list[str] | None = None) -> dict[str, str]:
        """POST /auth/app-portal-access/{app_id}: `{"url", "token"}`."""
        body = {} if capabilities is None else {"capabilities": capabilities}
        link: dict[str, str] = self.ok("POST", f"/auth/app-portal-access/{app_id}", body)
        return link


@pytest.fixture
def org(herald: Herald, app: Flask, committed_db: None) -> Org:
    """A fresh org with a committed token (every table is truncated after the test)."""
    with app.app_context():
        _, plain = tokens.create_token(f"portal-{uuid.uuid4().hex[:8]}")
    return Org(herald.base_url, plain)


@pytest.fixture
def host_page() -> Iterator[Callable[[str], str]]:
    """A page on another 127.0.0.1 port embedding a URL in an iframe: call it with the URL."""
    frames: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                "<!doctype html><html><head><title>Shop settings</title></head><body>"
                "<h1>Shop settings</h1>"
                f'<iframe id="portal" title="Webhooks" src="{html.escape(frames[self.path])}" '
                'style="width:100%;height:760px;border:1px solid #ccc"></iframe>'
                "</body></html>"
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def embed(url: str) -> str:
        path = f"/embed{len(frames)}"
        frames[path] = url
        return f"http://127.0.0.1:{server.server_port}{path}"

    yield embed
    server.shutdown()
    server.server_close()


# --- page helpers ----------------------------------------------------------------------------


def verified(secret: str, delivery: Received) -> object:
    """The payload of a delivery whose Standard Webhooks signature verifies with `secret`."""
    return Webhook(secret).verify(delivery.body, delivery.headers)


def log_rows(page: Page, status: str) -> Locator:
    """The rows of the endpoint page's log with that status badge ("Succeeded", "Failed")."""
    return page.locator("details.log", has=page.locator(".badge", has_text=status))


def wait_for_rows(page: Page, status: str, count: int) -> Locator:
    """Refresh the log until it lists `count` rows with that status (the page also refreshes
    by itself after a send; this covers a slow worker)."""

    def listed() -> bool:
        if log_rows(page, status).count() >= count:
            return True
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(300)
        return False

    eventually(listed, timeout=45, what=f"{count} {status} rows in the log")
    return log_rows(page, status)


def open_row(row: Locator) -> Locator:
    """Open a log row (its body loads on first opening) and wait for the response body."""
    row.locator("summary").click()
    expect(row.locator("[data-role=response]")).to_be_visible()
    return row
