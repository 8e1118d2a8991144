"""The consumer portal's files (api/blueprints/portal.py): content types, caching, the
Content-Security-Policy, JSON 404s, and assets that load nothing from another origin."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from api import create_app
from api.blueprints.portal import PORTAL_DIR
from api.config import ConfigError, parse_frame_ancestors
from tests.conftest import test_overrides

ASSETS = {
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}


def _directives(policy: str) -> dict[str, str]:
    pairs = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {name: value for name, value in pairs}


def _stamped(client: FlaskClient, name: str) -> str:
    """The `?v=` hash the page links the asset with."""
    page = client.get("/portal/").get_data(as_text=True)
    match = re.search(rf'"{re.escape(name)}\?v=([0-9a-f]+)"', page)
    assert match, f"index.html does not link {name} with its hash"
    return match.group(1)


def test_get_portal_page_is_html_with_a_strict_policy(client: FlaskClient) -> None:
    response = client.get("/portal/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "*"  # the default: svix-react's <AppPortal> iframe
    assert "unsafe" not in response.headers["Content-Security-Policy"]


def test_get_portal_without_slash_redirects_relatively(client: FlaskClient) -> None:
    response = client.get("/portal")
    assert response.status_code == 308
    assert response.headers["Location"] == "portal/"  # keeps a path prefix and the fragment


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_get_portal_asset_by_hash_is_cached_for_a_year(client: FlaskClient, name: str) -> None:
    response = client.get(f"/portal/{name}?v={_stamped(client, name)}")
    assert response.status_code == 200
    assert response.content_type == ASSETS[name]
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_get_portal_asset_without_current_hash_is_revalidated(
    client: FlaskClient, name: str
) -> None:
    for url in (f"/portal/{name}", f"/portal/{name}?v=0000"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"
        again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304


def test_head_portal_page_answers_without_body(client: FlaskClient) -> None:
    response = client.head("/portal/")
    assert response.status_code == 200
    assert response.get_data() == b""


@pytest.mark.parametrize(
    "path",
    [
        "/portal/missing.js",
        "/portal/index.html",
        "/portal/..%2Fblueprints%2Fportal.py",
        "/portal/../app.py",
        "/portal/sub/portal.js",
        "/portal/portal.py",
    ],
)
def test_get_portal_unknown_file_is_json_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json() == {"code": "not_found", "detail": "Entity not found"}


def test_portal_is_not_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert not [path for path in paths if path.startswith("/portal")]


def test_portal_frame_ancestors_comes_from_the_setting() -> None:
    app = create_app(test_overrides(PORTAL_FRAME_ANCESTORS="'self'  https://shop.example"))
    response = app.test_client().get("/portal/")
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "'self' https://shop.example"


@pytest.mark.parametrize("value", ["", "   ", "* ; script-src *", "a.example, b.example", "*\n"])
def test_parse_frame_ancestors_refuses_what_would_break_the_policy(value: str) -> None:
    with pytest.raises(ConfigError, match="HERALD_PORTAL_FRAME_ANCESTORS"):
        parse_frame_ancestors(value)


def test_portal_files_name_no_other_origin() -> None:
    for path in sorted(PORTAL_DIR.iterdir()):
        # an example.com placeholder (RFC 2606, never fetched) is the only URL allowed
        text = path.read_text(encoding="utf-8").replace('"https://example.com/webhooks"', "")
        assert not re.search(r"https?:|//[a-z0-9-]+\.[a-z0-9.-]+", text, re.I), (
            f"{path.name} refers to another origin (fonts, icons, scripts: inline or none)"
        )
        if path.suffix == ".css":
            assert not re.search(r"@import|url\(", text), f"{path.name} loads a resource"


def test_portal_page_has_no_inline_script_or_style() -> None:
    html = (PORTAL_DIR / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html.lower()
    assert not re.search(r"\sstyle=|\son[a-z]+=", html, re.I)


def test_portal_scripts_never_parse_html() -> None:
    scripts = sorted(PORTAL_DIR.glob("*.js"))
    assert {"portal.js", "dom.js"} <= {path.name for path in scripts}
    for path in scripts:
        script = path.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, f"{path.name} uses {sink}: build the DOM with dom.js h()"
        assert not re.search(r"new\s+Function|\.style\.|setTimeout\(\s*[\"'`]", script)


def test_portal_script_imports_are_served(client: FlaskClient) -> None:
    for path in sorted(PORTAL_DIR.glob("*.js")):
        for name in re.findall(r'from "\./([\w.-]+)"', path.read_text(encoding="utf-8")):
            response = client.get(f"/portal/{name}")
            assert response.status_code == 200, f"{path.name} imports {name}"
            assert response.content_type == "text/javascript; charset=utf-8"
