"""gunicorn's own answers (over-long request line or headers, unparsable requests) are JSON
`{"code", "detail"}` with the status, like Herald's, never its HTML page (gunicorn.conf.py).

Raw requests over a socket to the real `gunicorn -c gunicorn.conf.py` (one worker).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.e2e.gunicorn_harness import REQUEST_TIMEOUT, GunicornServer

pytestmark = pytest.mark.slow

LIMIT = 8190  # gunicorn.conf.py: limit_request_line and limit_request_field_size


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    srv = GunicornServer(tmp_path_factory.mktemp("gunicorn") / "run", app=None, workers=1)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        print(f"--- gunicorn log ({srv.log_path}) ---\n{srv.log_tail()}")  # shown on failure


def exchange(server: GunicornServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=REQUEST_TIMEOUT) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


def get(path: str, *headers: str) -> bytes:
    """A raw GET request with extra header lines."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def assert_json_error(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    """The status, and Herald's error body with a matching content type and length."""
    got, headers, body = answer
    assert got == status, body[:300]
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    parsed = json.loads(body)
    assert parsed["code"] == code and parsed["detail"], parsed


def test_request_line_over_the_limit_returns_json_414(server: GunicornServer) -> None:
    answer = exchange(server, get("/api/v1/" + "a" * LIMIT))
    assert_json_error(answer, 414, "uri_too_long")


def test_request_line_within_the_limit_reaches_herald(server: GunicornServer) -> None:
    path = "/api/v1/" + "a" * (LIMIT - len("GET /api/v1/ HTTP/1.1") - 1)
    assert_json_error(exchange(server, get(path)), 404, "not_found")  # Flask's JSON 404


def test_header_over_the_limit_returns_json_431(server: GunicornServer) -> None:
    answer = exchange(server, get("/api/v1/health/ping", "X-Big: " + "b" * LIMIT))
    assert_json_error(answer, 431, "request_header_fields_too_large")


def test_too_many_headers_return_json_431(server: GunicornServer) -> None:
    headers = [f"X-H{i}: v" for i in range(101)]
    answer = exchange(server, get("/api/v1/health/ping", *headers))
    assert_json_error(answer, 431, "request_header_fields_too_large")


def test_unparsable_request_returns_json_400(server: GunicornServer) -> None:
    answer = exchange(server, b"GET /api/v1/health/ping HTTP/9.9\r\nHost: x\r\n\r\n")
    assert_json_error(answer, 400, "bad_request")
