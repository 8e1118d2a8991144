"""SSRF guard: non-public ranges refused unless whitelisted; the checked address is used."""

from __future__ import annotations

import base64
import ipaddress
import socket

import pytest

from api.services.delivery.http_client import (
    DestinationBlocked,
    blocked_reason,
    post,
    resolve_checked,
)
from tests.support import Receiver, ScriptedReceiver

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    "address,reason",
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::1", "loopback"),
        ("fd12::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("2002:a00:1::1", "6to4"),
        ("64:ff9b::a00:1", "NAT64"),
        ("::ffff:10.0.0.1", "private"),
        ("2001:db8::1", "documentation"),
        ("::", "unspecified"),
    ],
)
def test_blocked_reason_names_the_range(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_blocked_reason_allows_public_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_whitelist_allows_a_blocked_range() -> None:
    assert blocked_reason(ipaddress.ip_address("127.0.0.5"), LOOPBACK) is None
    assert blocked_reason(ipaddress.ip_address("10.0.0.5"), LOOPBACK) == "private"


def test_resolve_checked_refuses_localhost_without_whitelist() -> None:
    with pytest.raises(DestinationBlocked, match="loopback"):
        resolve_checked("localhost", 80)
    assert "127.0.0.1" in resolve_checked("127.0.0.1", 80, LOOPBACK)


def by_name(receiver: Receiver) -> str:
    """The receiver's URL with the host name `localhost` (which resolves to loopback)."""
    return receiver.url.replace("127.0.0.1", "localhost")


def test_post_refuses_loopback_without_whitelist(receiver: Receiver) -> None:
    outcome = post(by_name(receiver), b"{}", {}, 5.0, whitelist=[])
    assert outcome.status_code == 0
    assert "loopback" in outcome.response and "refused" in outcome.response
    assert receiver.requests == []


def test_post_connects_to_checked_address_keeping_host_header(receiver: Receiver) -> None:
    allowed = [*LOOPBACK, ipaddress.ip_network("::1/128")]
    outcome = post(by_name(receiver), b"{}", {}, 5.0, whitelist=allowed)
    assert outcome.status_code == 200 and outcome.ok
    assert receiver.requests and receiver.requests[0].headers["host"].startswith("localhost:")


def answering(scripted_receiver: ScriptedReceiver, body: bytes) -> str:
    """A URL answering 200 with `body`."""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return scripted_receiver([(head + body, 0)])


def test_post_keeps_at_most_20000_bytes_of_the_response(
    scripted_receiver: ScriptedReceiver,
) -> None:
    url = answering(scripted_receiver, "é".encode() * 30_000)  # 60 KB of two-byte characters
    outcome = post(url, b"{}", {}, 5.0, LOOPBACK)
    assert outcome.ok and outcome.response == "é" * 10_000


def test_post_stores_non_utf8_response_as_base64(scripted_receiver: ScriptedReceiver) -> None:
    url = answering(scripted_receiver, b"\xff\xfe\x00binary")
    outcome = post(url, b"{}", {}, 5.0, LOOPBACK)
    assert base64.b64decode(outcome.response) == b"\xff\xfe\x00binary"


def test_post_without_response_gives_status_zero_and_error_text() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    outcome = post(f"http://127.0.0.1:{port}/", b"{}", {}, 5.0, LOOPBACK)
    assert outcome.status_code == 0 and not outcome.ok
    assert "ConnectionError" in outcome.response and outcome.duration_ms >= 0
