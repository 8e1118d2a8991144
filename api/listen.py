"""`herald listen`: a local webhook receiver for trying Herald out.

It prints each request (method, path, webhook id, event type, the body truncated), says
whether the Standard Webhooks signature verifies with the given secret, and answers 204.
Verification uses Herald's own signing code, so it works in a production-only venv.
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

from api.services.delivery.signing import sign

TOLERANCE_SECONDS = 5 * 60  # what the Standard Webhooks / svix verifiers accept
BODY_PREVIEW = 500


def verify_signature(
    headers: Mapping[str, str], body: bytes, secret: str, now: float | None = None
) -> str:
    """`valid`, or why not: `invalid`, `no signature headers`, `timestamp too old` / `too new`."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id") or lowered.get("svix-id")
    stamp = lowered.get("webhook-timestamp") or lowered.get("svix-timestamp")
    signatures = lowered.get("webhook-signature") or lowered.get("svix-signature")
    if not (msg_id and stamp and signatures):
        return "no signature headers"
    try:
        timestamp = int(stamp)
    except ValueError:
        return "invalid (bad timestamp)"
    skew = (time.time() if now is None else now) - timestamp
    if skew > TOLERANCE_SECONDS:
        return "timestamp too old"
    if skew < -TOLERANCE_SECONDS:
        return "timestamp too new"
    try:
        expected = sign(msg_id, timestamp, body, secret)
    except ValueError:
        return "invalid (the secret is not whsec_<base64>)"
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected.encode()):
            return "valid"
    return "invalid"


def describe_request(
    method: str, path: str, headers: Mapping[str, str], body: bytes, secret: str | None
) -> list[str]:
    """The lines printed for one request."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id") or lowered.get("svix-id") or "-"
    event_type = _event_type(body)
    signature = verify_signature(headers, body, secret) if secret else "not checked (no --secret)"
    head = f"{datetime.now():%H:%M:%S} {method} {path}  webhook-id={msg_id}"
    if event_type:
        head += f"  type={event_type}"
    text = body.decode("utf-8", errors="replace")
    if len(text) > BODY_PREVIEW:
        text = text[:BODY_PREVIEW] + f"... ({len(body)} bytes)"
    return [f"{head}  signature: {signature}", f"  {text}" if text else "  (empty body)"]


def _event_type(body: bytes) -> str | None:
    """The `type` / `eventType` field of a JSON object body, if there is one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        value = data.get("type") or data.get("eventType")
        return str(value) if value else None
    return None


def make_server(host: str, port: int, secret: str | None, out: TextIO) -> ThreadingHTTPServer:
    """A bound receiver (port 0 picks a free one); call serve_forever() on it."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _receive(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            lines = describe_request(self.command, self.path, headers, body, secret)
            with lock:
                out.write("\n".join(lines) + "\n")
                out.flush()
            self.send_response(204)
            self.end_headers()

        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _receive

        def log_message(self, format: str, *args: object) -> None:
            pass  # one description per request is printed above instead

    return ThreadingHTTPServer((host, port), Handler)


def run_listener(host: str, port: int, secret: str | None, out: TextIO = sys.stdout) -> None:
    """Serve until Ctrl-C."""
    server = make_server(host, port, secret, out)
    checking = "checking signatures" if secret else "not checking signatures (no --secret)"
    out.write(f"listening on http://{host}:{server.server_port}/ (any path), {checking}\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
