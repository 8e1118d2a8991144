"""Test-only WSGI entry point for the USR2 end-to-end tests (tests/e2e/test_usr2_reload.py).

gunicorn is started as `gunicorn -c gunicorn.conf.py tests.e2e.usr2_app:app`; a USR2 re-exec
keeps that argument, so every generation imports this module instead of `api:create_app()`.
It wraps the real app (nothing in api/ is changed) and makes generations observable:

- `$HERALD_RUN_DIR/usr2-release` is read at import; its text is sent back in
  `X-Herald-Release`, and the worker's pid in `X-Herald-Worker-Pid`;
- if `$HERALD_RUN_DIR/usr2-broken-release` exists, the import fails (a broken release);
- if `$HERALD_RUN_DIR/usr2-slow-boot` exists, the import first sleeps that many seconds;
- `GET /__e2e/sleep/<seconds>` holds a worker that long (a long request in flight);
- `GET /__e2e/hold/<name>` holds a worker until the test lets it go: it creates
  `$HERALD_RUN_DIR/usr2-hold-<name>.in` once it is in the worker and answers when
  `usr2-hold-<name>.go` exists (at most HOLD_MAX s) — a long request with no timing guess.

Files, not environment variables: a re-exec'd master gets the old master's original environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_RUN_DIR = Path(os.environ["HERALD_RUN_DIR"])
RELEASE_FILE = "usr2-release"
BROKEN_FILE = "usr2-broken-release"
SLOW_FILE = "usr2-slow-boot"
SLEEP_PREFIX = "/__e2e/sleep/"
HOLD_PREFIX = "/__e2e/hold/"
HOLD_MAX = 600.0

if (_RUN_DIR / BROKEN_FILE).exists():
    raise ImportError(f"usr2 e2e: broken release ({_RUN_DIR / BROKEN_FILE} exists)")
if (_RUN_DIR / SLOW_FILE).exists():
    time.sleep(float((_RUN_DIR / SLOW_FILE).read_text()))

try:
    RELEASE = (_RUN_DIR / RELEASE_FILE).read_text().strip() or "unknown"
except FileNotFoundError:
    RELEASE = "unknown"

from api import create_app  # noqa: E402  (after the broken-release check, like a bad import)

flask_app = create_app()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The Herald app, plus headers naming the release and the worker that answered."""

    def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        headers.append(("X-Herald-Release", RELEASE))
        headers.append(("X-Herald-Worker-Pid", str(os.getpid())))
        return start_response(status, headers, exc_info)

    path = environ.get("PATH_INFO", "")
    if path.startswith(SLEEP_PREFIX):
        time.sleep(float(path[len(SLEEP_PREFIX) :]))
        _start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept\n"]
    if path.startswith(HOLD_PREFIX):
        name = "".join(c for c in path[len(HOLD_PREFIX) :] if c.isalnum() or c in "-_")
        (_RUN_DIR / f"usr2-hold-{name}.in").write_text(f"{os.getpid()}\n")
        go, deadline = _RUN_DIR / f"usr2-hold-{name}.go", time.monotonic() + HOLD_MAX
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        _start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"released\n" if go.exists() else b"hold expired\n"]
    return flask_app(environ, _start_response)
