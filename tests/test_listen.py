"""`herald listen`: the installed command receiving real HTTP requests and real deliveries."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix
from svix.webhooks import Webhook

from api.listen import verify_signature

HERALD = Path(sys.executable).parent / "herald"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@dataclass
class Listener:
    """A running `herald listen`: its URL and the lines it printed."""

    url: str
    lines: queue.Queue[str]

    def next_request(self, timeout: float = 15.0) -> list[str]:
        """The two lines printed for the next request (summary, body)."""
        deadline = time.monotonic() + timeout
        return [self.lines.get(timeout=max(0.1, deadline - time.monotonic())) for _ in range(2)]


@contextmanager
def listening(*args: str, port: int = 0) -> Iterator[Listener]:
    """Run `herald listen --port PORT ARGS` (0: a free one), read its URL from the first line;
    stops it afterwards."""
    process = subprocess.Popen(
        [str(HERALD), "listen", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", first)
        assert match, first
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()
        yield Listener(match.group(1), lines)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def listener() -> Iterator[Listener]:
    """`herald listen --secret SECRET` on a free port."""
    with listening("--secret", SECRET) as running:
        yield running


def signed(secret: str, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """Headers as the svix SDK's own signer makes them (not Herald's code)."""
    moment = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def test_listen_reports_valid_signature_and_answers_204(listener: Listener) -> None:
    body = json.dumps({"type": "invoice.paid", "id": "in_1"}).encode()
    response = requests.post(
        f"{listener.url}/webhook", data=body, headers=signed(SECRET, "msg_1", body)
    )
    assert response.status_code == 204
    summary, shown = listener.next_request()
    assert re.search(
        r"POST /webhook  webhook-id=msg_1  type=invoice\.paid  signature: valid$", summary
    ), summary
    assert shown == '  {"type": "invoice.paid", "id": "in_1"}'


def test_listen_reports_signature_of_another_secret_invalid(listener: Listener) -> None:
    body = b'{"id": "x"}'
    headers = signed(OTHER_SECRET, "msg_2", body)
    assert requests.post(listener.url, data=body, headers=headers).status_code == 204
    summary, _ = listener.next_request()
    assert summary.endswith("webhook-id=msg_2  signature: invalid"), summary


def test_listen_reports_tampered_body_invalid(listener: Listener) -> None:
    headers = signed(SECRET, "msg_3", b'{"amount": 1}')
    assert requests.post(listener.url, data=b'{"amount": 100}', headers=headers).status_code == 204
    summary, _ = listener.next_request()
    assert summary.endswith("signature: invalid"), summary


def test_listen_reports_unsigned_request_and_truncates_body(listener: Listener) -> None:
    assert requests.post(f"{listener.url}/x", data=b"a" * 2000).status_code == 204
    summary, shown = listener.next_request()
    assert summary.endswith("POST /x  webhook-id=-  signature: no signature headers"), summary
    assert shown == "  " + "a" * 500 + "... (2000 bytes)"


def test_listen_without_secret_does_not_check() -> None:
    with listening() as listener:
        body = b'{"type": "user.signup"}'
        requests.post(listener.url, data=body, headers=signed(SECRET, "msg_4", body))
        summary, _ = listener.next_request()
        assert summary.endswith("signature: not checked (no --secret)"), summary


def test_verify_signature_refuses_old_timestamp() -> None:
    body = b"{}"
    headers = signed(SECRET, "msg_5", body, at=datetime.fromtimestamp(time.time() - 600, UTC))
    assert verify_signature(headers, body, SECRET) == "timestamp too old"
    assert verify_signature(headers, body, SECRET, now=time.time() - 600) == "valid"


def test_listen_verifies_a_real_herald_delivery(sdk: Svix, celery_worker: object) -> None:
    """The README tour: Herald delivers to `herald listen --secret <the endpoint's secret>`."""
    with socket.socket() as probe:  # a free port for the endpoint URL, then the listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = sdk.application.create(ApplicationIn(name="Listen", uid="listen"))
    endpoint = sdk.endpoint.create(app.id, EndpointIn(url=f"http://127.0.0.1:{port}/webhook"))
    secret = sdk.endpoint.get_secret(app.id, endpoint.id).key
    with listening("--secret", secret, port=port) as listener:
        message = sdk.message.create(
            app.id, MessageIn(event_type="user.signup", payload={"type": "user.signup"})
        )
        summary, shown = listener.next_request(timeout=20)
        assert summary.endswith(
            f"POST /webhook  webhook-id={message.id}  type=user.signup  signature: valid"
        ), summary
        assert shown == '  {"type":"user.signup"}'
