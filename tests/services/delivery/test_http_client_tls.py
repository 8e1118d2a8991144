"""HTTPS through the guarded adapter: the socket goes to the checked address, while SNI and the
certificate's host name check still use the URL's host (real TLS on 127.0.0.1, openssl certs)."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from api.services.delivery.http_client import DestinationBlocked, guarded_session

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for DNS name `name`."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, dict[str, list[str]]]]:
    """An HTTPS server on 127.0.0.1 whose certificate says `localhost`; records SNI and Host."""
    cert, key = make_cert(tmp_path, "localhost")
    seen: dict[str, list[str]] = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen["host"].append(self.headers["Host"])
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name or "")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_port, cert, seen
    server.shutdown()
    server.server_close()


def test_https_post_verifies_the_url_host_name_on_the_checked_address(
    tls_server: tuple[int, Path, dict[str, list[str]]],
) -> None:
    port, cert, seen = tls_server
    response = guarded_session(LOOPBACK).post(
        f"https://localhost:{port}/hook", data=b"{}", verify=str(cert), timeout=5
    )
    assert response.status_code == 200
    assert seen["sni"] == ["localhost"]
    assert seen["host"] == [f"localhost:{port}"]


def test_https_post_rejects_a_certificate_for_another_name(
    tls_server: tuple[int, Path, dict[str, list[str]]], tmp_path: Path
) -> None:
    port, _, _ = tls_server
    other, _ = make_cert(tmp_path, "other.example")  # trusted, but names another host
    with pytest.raises(requests.exceptions.SSLError):
        guarded_session(LOOPBACK).post(
            f"https://localhost:{port}/hook", data=b"{}", verify=str(other), timeout=5
        )


def test_https_post_to_loopback_is_refused_without_whitelist(
    tls_server: tuple[int, Path, dict[str, list[str]]],
) -> None:
    port, cert, seen = tls_server
    with pytest.raises(DestinationBlocked, match="loopback"):
        guarded_session().post(
            f"https://localhost:{port}/hook", data=b"{}", verify=str(cert), timeout=5
        )
    assert seen["host"] == []  # no request reached the server
