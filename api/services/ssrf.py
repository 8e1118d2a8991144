"""Guarded outbound HTTP: refuse non-public addresses, connect only to the address checked.

The check lives in the connection class (`_new_conn`), so the socket is opened to exactly the
IP that passed the check (no DNS rebinding window) while Host and TLS SNI/certificate checks
keep using the URL's host name.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges that are never a public destination (RFC 6890 special-purpose registries and friends).
BLOCKED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64"),
    ("100::/64", "discard"),
    ("2001::/23", "reserved"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
BLOCKED_NETWORKS: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), reason) for net, reason in BLOCKED
)


class DestinationBlocked(Exception):
    """The endpoint's host resolves to an address that webhooks may not reach."""


def blocked_reason(ip: IPAddress, whitelist: Sequence[Network] = ()) -> str | None:
    """Why `ip` is not a public destination (None when it is, or when whitelisted)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in whitelist):
        return None
    for net, reason in BLOCKED_NETWORKS:
        if ip.version == net.version and ip in net:
            return reason
    for attr in (
        "is_private",
        "is_loopback",
        "is_link_local",
        "is_multicast",
        "is_reserved",
        "is_unspecified",
    ):
        if getattr(ip, attr):
            return attr[3:].replace("_", "-")
    return None


def resolve_checked(host: str, port: int, whitelist: Sequence[Network] = ()) -> list[str]:
    """Resolve `host`; refuse (DestinationBlocked) when any address is not public."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        reason = blocked_reason(ipaddress.ip_address(address), whitelist)
        if reason:
            raise DestinationBlocked(
                f"destination {host} resolves to a {reason} address ({address}); refused"
            )
        if address not in addresses:
            addresses.append(address)
    return addresses


class _GuardedConnectionMixin:
    """Connects to a checked address of the URL's host instead of re-resolving it."""

    whitelist: tuple[Network, ...] = ()

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        try:
            addresses = resolve_checked(conn._dns_host, conn.port, self.whitelist)
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools open sockets only to checked, allowed addresses."""

    def __init__(self, whitelist: Iterable[Network] = (), **kwargs: Any) -> None:
        allowed = tuple(whitelist)
        attrs = {"whitelist": allowed}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
        https_conn = type(
            "GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs
        )
        self._pool_classes = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


def guarded_session(whitelist: Iterable[Network] = (), pool_size: int = 32) -> requests.Session:
    """A pooled Session that refuses non-public destinations and ignores proxy env vars."""
    session = requests.Session()
    session.trust_env = False  # an env proxy would make us connect to an unchecked address
    adapter = GuardedAdapter(whitelist, pool_connections=pool_size, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


RESPONSE_MAX_BYTES = 20_000
_local = threading.local()


@dataclass(frozen=True)
class Outcome:
    """What one POST produced: status 0 and an error text when there was no response."""

    status_code: int
    response: str
    duration_ms: int
    timed_out: bool = False
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        """2xx only; redirects are not followed and count as failures."""
        return 200 <= self.status_code < 300


def thread_session(whitelist: Sequence[Network]) -> requests.Session:
    """This thread's pooled guarded Session (rebuilt if the whitelist changes)."""
    key = tuple(str(net) for net in whitelist)
    if getattr(_local, "key", None) != key:
        _local.session = guarded_session(whitelist)
        _local.key = key
    session: requests.Session = _local.session
    return session


def response_text(data: bytes) -> str:
    """The stored response: UTF-8 text (a cut multibyte tail dropped) or else base64."""
    for cut in range(4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            if len(data) < RESPONSE_MAX_BYTES:
                break
    return base64.b64encode(data).decode()


def _read_capped(response: requests.Response) -> bytes:
    """At most RESPONSE_MAX_BYTES of the body (a longer body is cut and its socket dropped)."""
    data = bytearray()
    for chunk in response.iter_content(8192):
        data += chunk
        if len(data) >= RESPONSE_MAX_BYTES:
            break
    return bytes(data[:RESPONSE_MAX_BYTES])


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    whitelist: Sequence[Network] = (),
) -> Outcome:
    """POST exact bytes without following redirects; never raises for transport errors."""
    session = thread_session(whitelist)
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        for tries in (1, 2):
            try:
                with session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                ) as response:
                    data = _read_capped(response)
                    return Outcome(
                        response.status_code,
                        response_text(data),
                        elapsed(),
                        retry_after=response.headers.get("retry-after"),
                    )
            except requests.ConnectionError as exc:
                # nothing was sent when the connection could not be opened: one quick retry
                fast = time.monotonic() - started < 1.0
                if tries == 2 or not fast or "NewConnectionError" not in repr(exc):
                    raise
    except DestinationBlocked as exc:
        return Outcome(0, str(exc), elapsed())
    except requests.Timeout as exc:
        return Outcome(
            0, f"timeout after {timeout:g}s: {type(exc).__name__}", elapsed(), timed_out=True
        )
    except requests.RequestException as exc:
        return Outcome(0, f"{type(exc).__name__}: {exc}"[:1000], elapsed())
    raise AssertionError("unreachable")
