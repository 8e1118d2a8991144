"""The HTTP client that sends webhooks: `post()` never raises for transport errors.

SSRF guard: non-public addresses are refused, and the check lives in the connection class
(`_new_conn`), so the socket is opened to exactly the IP that passed the check (no DNS
rebinding window) while Host and TLS SNI/certificate checks keep using the URL's host name.
Deadline: the timeout bounds the whole request on the wall clock (`Watch`, `Deadlines`).
Storage: what of a response is kept (`response_text`, `header_text`, `response_header_pairs`).
"""

from __future__ import annotations

import base64
import heapq
import ipaddress
import itertools
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


class Watch:
    """The wall-clock deadline of one request: past it, its connections' sockets are shut down,
    so a receiver trickling its headers or body cannot hold the request (a socket timeout
    bounds each read only)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self.done = False
        self.connections: list[Any] = []
        self.lock = threading.Lock()

    def add(self, holder: Any) -> None:
        """Watch a connection (its socket at expiry) or a socket."""
        if holder is None:
            return
        with self.lock:
            self.connections.append(holder)
            late = self.fired
        if late:
            self._shut(holder)

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
            connections = list(self.connections)
        for connection in connections:
            self._shut(connection)

    def disarm(self) -> bool:
        """Stop watching; True when the deadline had passed (the response is not to be used)."""
        with self.lock:
            self.done = True
            self.connections.clear()  # nothing of the request is kept until the deadline
            return self.fired

    @staticmethod
    def _shut(holder: Any) -> None:
        sock = holder if isinstance(holder, socket.socket) else getattr(holder, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a blocked recv/send returns at once
            except OSError:
                pass


class Deadlines:
    """One thread expiring every request's Watch at its deadline (a heap, lazily pruned)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Watch:
        watch = Watch(time.monotonic() + seconds)
        with self._cond:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()
        return watch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, watch = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0 and not watch.done:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            watch.expire()


DEADLINES = Deadlines()


class _GuardedConnectionMixin:
    """Connects to a checked address of the URL's host instead of re-resolving it, and puts
    itself under the current request's deadline (`Watch`)."""

    whitelist: tuple[Network, ...] = ()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        watch: Watch | None = getattr(_local, "watch", None)
        if watch is None:
            return super().request(*args, **kwargs)  # type: ignore[misc]
        watch.add(self)  # while connecting and sending: the connection's socket
        result = super().request(*args, **kwargs)  # type: ignore[misc]
        # the response may outlive the connection's hold on the socket (a body read until
        # close: http.client hands the socket to the response and clears `sock`)
        watch.add(self.sock)  # type: ignore[attr-defined]
        return result

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
    response_headers: tuple[tuple[str, str], ...] | None = None  # None: no response came back
    sent_headers: tuple[tuple[str, str], ...] | None = None  # set by send.send
    blocked: bool = False  # refused by the SSRF guard (nothing was sent)

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
    """The stored response: UTF-8 text (a cut multibyte tail dropped) or else base64 — also
    for text holding a NUL, which a PostgreSQL text column cannot store."""
    for cut in range(4):
        try:
            text = data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            if len(data) < RESPONSE_MAX_BYTES:
                break
            continue
        return text if "\x00" not in text else base64.b64encode(data).decode()
    return base64.b64encode(data).decode()


def header_text(value: str | None) -> str | None:
    """A response header as stored text: printable ASCII only, else None (ignored)."""
    if value is None or not value.isascii() or not value.isprintable():
        return None
    return value[:256]


RESPONSE_HEADERS_MAX = 64  # pairs kept of a response's headers
RESPONSE_HEADERS_MAX_CHARS = 8192  # names and values kept, all told
RESPONSE_HEADER_VALUE_MAX = 1024  # a longer value is cut


def response_header_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A response's headers as stored: (name, value) in order, repeats kept; a pair with
    anything but printable ASCII is left out, a long value cut, and the whole bounded."""
    kept: list[tuple[str, str]] = []
    size = 0
    for name, value in pairs:
        if not (name.isascii() and name.isprintable() and value.isascii() and value.isprintable()):
            continue
        value = value[:RESPONSE_HEADER_VALUE_MAX]
        size += len(name) + len(value)
        if len(kept) >= RESPONSE_HEADERS_MAX or size > RESPONSE_HEADERS_MAX_CHARS:
            break
        kept.append((name[:256], value))
    return tuple(kept)


def _read_capped(response: requests.Response) -> bytes:
    """At most RESPONSE_MAX_BYTES of the body (a longer body is cut and its socket dropped)."""
    data = bytearray()
    for chunk in response.iter_content(8192):
        data += chunk
        if len(data) >= RESPONSE_MAX_BYTES:
            break
    return bytes(data[:RESPONSE_MAX_BYTES])


def _past_deadline(timeout: float, elapsed_ms: int) -> Outcome:
    return Outcome(
        0,
        f"timeout: no complete response within {timeout:g}s (the request's deadline)",
        elapsed_ms,
        timed_out=True,
    )


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    whitelist: Sequence[Network] = (),
) -> Outcome:
    """POST exact bytes without following redirects; never raises for transport errors.

    `timeout` bounds the whole request (connect, send, the response's headers and body) on
    the wall clock, not only each socket operation.
    """
    started = time.monotonic()
    watch = _local.watch = DEADLINES.arm(timeout)
    try:
        outcome: Outcome | None = _post(thread_session(whitelist), url, body, headers, timeout)
    except Exception:
        if not watch.disarm():
            raise
        outcome = None  # whatever the shut socket raised: the deadline is the cause
    finally:
        _local.watch = None
    if watch.disarm() or outcome is None:
        return _past_deadline(timeout, int((time.monotonic() - started) * 1000))
    return outcome


def _post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> Outcome:
    """One POST (and one quick retry when the connection could not be opened)."""
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
                    raw = response.raw.headers if response.raw is not None else response.headers
                    return Outcome(
                        response.status_code,
                        response_text(data),
                        elapsed(),
                        retry_after=header_text(response.headers.get("retry-after")),
                        response_headers=response_header_pairs(raw.items()),
                    )
            except requests.ConnectionError as exc:
                # nothing was sent when the connection could not be opened: one quick retry
                fast = time.monotonic() - started < 1.0
                if tries == 2 or not fast or "NewConnectionError" not in repr(exc):
                    raise
    except DestinationBlocked as exc:
        return Outcome(0, str(exc), elapsed(), blocked=True)
    except requests.Timeout as exc:
        return Outcome(
            0, f"timeout after {timeout:g}s: {type(exc).__name__}", elapsed(), timed_out=True
        )
    except requests.RequestException as exc:
        return Outcome(0, response_text(f"{type(exc).__name__}: {exc}"[:1000].encode()), elapsed())
    raise AssertionError("unreachable")
