"""The consumer app portal: GET /portal/ (the page) and /portal/<file> (its script and styles).

A plain Flask Blueprint registered on the app, not through flask-smorest: the page is not part
of the Svix API and stays out of the OpenAPI document. The page reads its app token from the
URL fragment (`/portal/#key=appsk_...`) and calls /api/v1 with it; nothing here authenticates.

Caching: the page is revalidated on every load (`no-cache` + ETag) and names its assets with
their content hash (`portal.js?v=<hash>`), so an asset fetched with the current hash is cached
for a year and a new release is picked up at once. Every response carries a strict
Content-Security-Policy (no inline script, no third-party origin); HERALD_PORTAL_FRAME_ANCESTORS
says which sites may embed the page in an iframe (default `*`: restrict it in production).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Response, current_app, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

PORTAL_DIR = Path(__file__).resolve().parent.parent / "portal"
INDEX = "index.html"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"

blp = Blueprint("portal", __name__)


def _read(name: str) -> bytes:
    """An asset's bytes; 404 for anything that is not a file of the portal with a known type."""
    if Path(name).name != name or Path(name).suffix not in CONTENT_TYPES:
        raise NotFound()
    path = PORTAL_DIR / name
    if not path.is_file():
        raise NotFound()
    return path.read_bytes()


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]


def content_security_policy() -> str:
    """The page's policy: its own origin only, no inline script or style, framing as set."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors " + current_app.config["PORTAL_FRAME_ANCESTORS"]
    )


def _respond(content: bytes, content_type: str, cache_control: str) -> ResponseReturnValue:
    response = Response(content, content_type=content_type)
    response.headers["Cache-Control"] = cache_control
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.set_etag(_digest(content))
    return response.make_conditional(request)


@blp.get("/portal", strict_slashes=True)
def portal_redirect() -> ResponseReturnValue:
    """`/portal` → `/portal/` (relative, so a path prefix survives; the fragment is kept)."""
    return redirect("portal/", 308)


@blp.get("/portal/", strict_slashes=True)
def portal_index() -> ResponseReturnValue:
    """The page, its asset references stamped with their content hash."""
    html = (PORTAL_DIR / INDEX).read_text(encoding="utf-8")
    for path in sorted(PORTAL_DIR.iterdir()):
        if path.suffix in CONTENT_TYPES:
            html = html.replace(f'"{path.name}"', f'"{path.name}?v={_digest(path.read_bytes())}"')
    return _respond(html.encode("utf-8"), "text/html; charset=utf-8", "no-cache")


@blp.get("/portal/<string:name>")
def portal_asset(name: str) -> ResponseReturnValue:
    """A script or stylesheet: cached for a year when asked for by its current hash."""
    content = _read(name)
    fresh = request.args.get("v") == _digest(content)
    content_type = CONTENT_TYPES[Path(name).suffix]
    return _respond(content, content_type, IMMUTABLE if fresh else "no-cache")
