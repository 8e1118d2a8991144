"""`herald devserver` (what `make run` runs): the whole stack on a laptop, in one terminal.

Migrates (creating the database if missing), keeps a dev token in var/dev-token, then runs
the Procfile's web, worker and scheduler (and an embedded Redis unless REDIS_URL is set) as
child processes with their output prefixed. Prints `ready` once the web answers its health
check and the worker and scheduler have started. Ctrl-C, SIGTERM or SIGHUP stops every
child (each in its own process group) and exits 0.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from api.supervisor import StopRequest, Supervisor

DEV_ORG = "dev"
DEMO_APP = {"name": "Demo", "uid": "demo"}  # the application the banner's portal link shows
PORTAL_RENEW_BEFORE = 24 * 3600  # mint a new portal token when the kept one has less left
# a line that says the process is up (the web is checked through /api/v1/health instead)
READY_MARKERS = {
    "redis": re.compile(r"ready to accept connections", re.IGNORECASE),
    "worker": re.compile(r"celery@\S+ ready\."),
    "scheduler": re.compile(r"beat: Starting\.\.\."),
}
PROCESSES = ("web", "worker", "scheduler")  # from the Procfile; `release` is run in-process
BOOT_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0  # a worker's warm shutdown waits for in-flight deliveries (15 s timeout)
WIDTH = len("scheduler")


class DevserverError(Exception):
    """Something a newcomer must fix before the stack can start (printed as one line)."""


def read_procfile(path: Path) -> dict[str, str]:
    """`name: command` lines of a Procfile (comments and blank lines skipped)."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def devserver_environ(directory: Path, port: int, environ: dict[str, str]) -> dict[str, str]:
    """The environment of the devserver and its children: development defaults, the SQLite
    file and embedded Redis under DIR/var unless DATABASE_URL / REDIS_URL are set."""
    env = dict(environ)
    env.setdefault("HERALD_ENV", "development")
    env["PORT"] = str(port)
    env.setdefault("WEB_CONCURRENCY", "2")  # a laptop quickstart
    env.setdefault("DATABASE_URL", f"sqlite:///{directory / 'var' / 'herald.db'}")
    env.setdefault("REDIS_URL", f"unix://{directory / 'var' / 'redis.sock'}")
    env.setdefault("HERALD_RUN_DIR", str(directory / "var" / "run"))  # gunicorn's pidfile
    env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not when a buffer fills
    bin_dir = str(Path(sys.executable).parent)  # gunicorn, celery: also without an active venv
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def check_port_free(host: str, port: int) -> None:
    """Fail with what to do when another process (another `make run`?) holds the port."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise DevserverError(
                f"port {port} is in use (another `make run`?): stop it or set PORT=<free port>"
            ) from None


def prepare_database(token_file: Path) -> tuple[str, str | None, str]:
    """Create the database if missing, migrate; returns the dev token (reused from
    `token_file` while it still authenticates, else a new one written there), what was
    created, if anything, and an app portal token of the dev org's demo application (kept
    beside the dev token in `dev-portal-token` while it has a day left)."""
    from flask_migrate import upgrade

    from api import create_app
    from api.extensions import db
    from api.provision import DatabaseUnreachable, ensure_database
    from api.services import tokens

    app = create_app()
    with app.app_context():
        try:
            created = ensure_database(app.config["SQLALCHEMY_DATABASE_URI"])
        except DatabaseUnreachable as exc:
            raise DevserverError(f"cannot reach the database: {exc}") from None
        upgrade()
        token = token_file.read_text().strip() if token_file.exists() else ""
        principal = tokens.authenticate(token) if token else None
        dev_org = tokens.get_or_create_org(DEV_ORG)
        if principal is None or principal.org_id != dev_org.id:
            _, token = tokens.create_token(DEV_ORG)
            _write_secret(token_file, token)
        portal = _demo_portal_token(dev_org.id, token_file.with_name("dev-portal-token"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return token, created, portal


def _write_secret(path: Path, value: str) -> None:
    """Write a token to a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(value + "\n")


def _demo_portal_token(org_id: str, portal_file: Path) -> str:
    """An app portal token (every capability) of the org's demo application, created if
    missing: the one in `portal_file` while it has PORTAL_RENEW_BEFORE left, else a new one."""
    from api.models.common import utcnow
    from api.services import applications, tokens
    from serializers.auth import DEFAULT_CAPABILITIES, DEFAULT_EXPIRY

    demo, _ = applications.create_application(org_id, dict(DEMO_APP), get_if_exists=True)
    kept = portal_file.read_text().strip() if portal_file.exists() else ""
    principal = tokens.authenticate(kept) if kept.startswith(tokens.APP_TOKEN_PREFIX) else None
    if (
        principal is not None
        and principal.app_id == demo.id
        and principal.expires_at is not None
        and (principal.expires_at - utcnow()).total_seconds() > PORTAL_RENEW_BEFORE
    ):
        return kept
    _, plain = tokens.create_app_token(demo, DEFAULT_CAPABILITIES, [], DEFAULT_EXPIRY)
    _write_secret(portal_file, plain)
    return plain


def health_ok(url: str) -> bool:
    """Whether GET url answers 204 (database and Redis reachable)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 204)
    except (urllib.error.URLError, OSError):
        return False


def banner(
    port: int,
    token: str,
    env: dict[str, str],
    embedded: bool,
    token_file: Path,
    portal_token: str = "",
) -> str:
    """What a newcomer needs once everything is up."""
    base = f"http://127.0.0.1:{port}/api/v1"
    database = make_url(env["DATABASE_URL"]).render_as_string(hide_password=True)
    redis = env["REDIS_URL"]
    try:
        shown_file = token_file.relative_to(Path.cwd())
    except ValueError:
        shown_file = token_file
    return "\n".join(
        [
            "",
            f"  URL:    {base}   (health: {base}/health)",
            f"  Token:  {token}",
            *(
                [f"  Portal: http://127.0.0.1:{port}/portal/#key={portal_token}   (app demo)"]
                if portal_token
                else []
            ),
            f"  DB:     {database}",
            f"  Redis:  {redis}" + ("   (embedded)" if embedded else ""),
            "  In another shell:",
            f"    TOKEN=$(cat {shown_file})",
            f'    curl -H "Authorization: Bearer $TOKEN" {base}/app',
            "  Ctrl-C stops everything.",
            "",
        ]
    )


def run_devserver(directory: Path, port: int, out: TextIO = sys.stdout) -> int:
    """Boot the stack, print `ready`, supervise until told to stop; 0 when stopped on request,
    1 when a process died or the stack did not come up."""
    started = time.monotonic()
    stop = StopRequest()
    stop.install()
    host = os.environ.get("HERALD_BIND", "127.0.0.1")
    check_port_free(host, port)
    embedded = not os.environ.get("REDIS_URL")
    env = devserver_environ(directory, port, dict(os.environ))
    os.environ.update(env)  # the in-process migration and token see what the children see
    procfile = read_procfile(directory / "Procfile")
    missing = [name for name in PROCESSES if name not in procfile]
    if missing:
        raise DevserverError(f"{directory / 'Procfile'} has no {', '.join(missing)} line")
    token_file = directory / "var" / "dev-token"
    (directory / "var" / "run").mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(directory, env, out, name="herald", width=WIDTH)
    try:
        if embedded:
            redis = supervisor.start(
                "redis", f"{sys.executable} -m api.embedded_redis var", READY_MARKERS["redis"]
            )
        token, created, portal_token = prepare_database(token_file)
        if created:
            supervisor.say("herald", f"created {created}")
        if embedded and not _wait(lambda: redis.up.is_set(), supervisor, stop, 15.0):
            return _give_up(supervisor, stop, "the embedded Redis did not start")
        for name in PROCESSES:
            supervisor.start(name, procfile[name], READY_MARKERS.get(name))
        health = f"http://127.0.0.1:{port}/api/v1/health"

        def all_up() -> bool:
            marked = [c for c in supervisor.children if c.ready is not None]
            return all(c.up.is_set() for c in marked) and health_ok(health)

        if not _wait(all_up, supervisor, stop, BOOT_TIMEOUT):
            return _give_up(supervisor, stop, f"not ready after {BOOT_TIMEOUT:.0f} s")
        supervisor.write(banner(port, token, env, embedded, token_file, portal_token) + "\n")
        elapsed = time.monotonic() - started
        supervisor.say("herald", f"ready in {elapsed:.1f} s: web (health 204), worker, scheduler")
        while not stop.requested():
            crashed = supervisor.exited()
            if crashed is not None:
                return _give_up(supervisor, stop, f"{crashed.name} exited")
            time.sleep(0.25)
        supervisor.say("herald", f"{stop.reason}: stopping")
        return 0
    finally:
        supervisor.stop(last=("redis",), timeout=STOP_TIMEOUT)  # the worker acks on its way out
        supervisor.say("herald", "stopped")


def _wait(
    condition: Callable[[], bool], supervisor: Supervisor, stop: StopRequest, timeout: float
) -> bool:
    """Poll `condition` until true; False on timeout, a stop request or a child exiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.requested() or supervisor.exited() is not None:
            return False
        if condition():
            return True
        time.sleep(0.2)
    return False


def _give_up(supervisor: Supervisor, stop: StopRequest, why: str) -> int:
    """Say why the stack is going down: 0 when asked to stop, else 1."""
    if stop.requested():
        supervisor.say("herald", f"{stop.reason}: stopping")
        return 0
    crashed = supervisor.exited()
    if crashed is not None and crashed.process is not None:
        why = f"{crashed.name} exited (rc {crashed.process.returncode})"
    supervisor.say("herald", f"{why}: stopping everything")
    return 1
