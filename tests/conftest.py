"""Test harness: real PostgreSQL and Redis, schema from the migrations, a transaction per test.

Environment: TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/herald_test) and
TEST_REDIS_URL (default redis://127.0.0.1:6379/1) let parallel runs use their own database and
Redis db number. The suite drops and re-creates the test database and flushes the Redis db, so
it only ever uses those two variables (never DATABASE_URL / REDIS_URL, which name the data of a
running Herald) and refuses to start when the test database is the one DATABASE_URL names.
Unreachable services end the run at once with one line saying which.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from svix.api import Svix, SvixOptions
from werkzeug.serving import make_server

from api import create_app
from api.config import ROOT, normalize_database_url
from api.extensions import db, get_redis
from api.services import routing, tokens
from tests.support import Received, Receiver, ScriptedReceiver

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/herald_test"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/1"


class UnsafeTestDatabase(Exception):
    """The test database is not one the suite may drop."""


def disposable_database_url(environ: Mapping[str, str]) -> str:
    """The database the suite may drop: TEST_DATABASE_URL or the default `herald_test`.

    DATABASE_URL is never a fallback; a TEST_DATABASE_URL naming the same database as
    DATABASE_URL is refused (UnsafeTestDatabase).
    """
    url = normalize_database_url(environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL)
    live = environ.get("DATABASE_URL")
    if live and same_database(url, normalize_database_url(live)):
        raise UnsafeTestDatabase(
            f"herald tests: refusing to run: TEST_DATABASE_URL names the database DATABASE_URL "
            f"uses ({make_url(url).database}) and the suite drops it; point TEST_DATABASE_URL "
            f"at a disposable database"
        )
    return url


def same_database(a: str, b: str) -> bool:
    """Whether two URLs name the same database on the same server."""
    first, second = make_url(a), make_url(b)
    if first.get_backend_name() != second.get_backend_name():
        return False
    if first.get_backend_name() == "sqlite":
        return os.path.abspath(first.database or "") == os.path.abspath(second.database or "")
    local = {None, "", "localhost", "127.0.0.1", "::1"}

    def where(url: Any) -> tuple[Any, ...]:
        host = "localhost" if url.host in local else url.host
        return (host, url.port or 5432, url.database)

    return where(first) == where(second)


try:
    DATABASE_URL, _REFUSAL = disposable_database_url(os.environ), ""
except UnsafeTestDatabase as exc:
    DATABASE_URL, _REFUSAL = "", str(exc)
REDIS_URL = os.environ.get("TEST_REDIS_URL") or DEFAULT_TEST_REDIS_URL


def pytest_configure(config: pytest.Config) -> None:
    """Stop before anything runs when the test database is not a disposable one."""
    if _REFUSAL:
        pytest.exit(_REFUSAL, returncode=4)


def unreachable_service(database_url: str, redis_url: str) -> str | None:
    """One line naming the service that does not answer within a few seconds, else None."""
    server = make_url(database_url).set(drivername="postgresql", database="postgres")
    try:
        psycopg.connect(server.render_as_string(hide_password=False), connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return (
            f"herald tests: PostgreSQL at {server.render_as_string()} (TEST_DATABASE_URL) is "
            f"unreachable: {reason}"
        )
    try:
        conn = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
        conn.ping()
        conn.close()
    except (redis.RedisError, ValueError) as exc:
        return f"herald tests: Redis at {redis_url} (TEST_REDIS_URL) is unreachable: {exc}"
    return None


def recreate_database(url: str) -> None:
    """Drop and create the test database (connecting to the server's `postgres` db)."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def test_overrides(**extra: object) -> dict[str, object]:
    """Config for a test app: the test database and Redis, fast loops, loopback allowed."""
    return {
        "ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        **extra,
    }


test_overrides.__test__ = False  # type: ignore[attr-defined]  (a helper, not a test)


# The API and service tests run on both databases the app supports: PostgreSQL (production) and
# SQLite (the `make run` quickstart). A test that needs PostgreSQL says so with the marker.
BOTH_DATABASES = ("tests/api/", "tests/services/")
DATABASES = tuple(
    name.strip() for name in os.environ.get("TEST_DATABASES", "postgresql,sqlite").split(",")
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give each API/service test using the app one run per database in TEST_DATABASES."""
    if "database" not in metafunc.fixturenames:
        return
    if metafunc.definition.path.relative_to(ROOT).as_posix().startswith(BOTH_DATABASES):
        metafunc.parametrize("database", DATABASES, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the SQLite runs of tests (or parameters) marked `postgresql_only`."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        on_sqlite = params is not None and params.params.get("database") == "sqlite"
        (drop if on_sqlite and item.get_closest_marker("postgresql_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> str:
    """Which database the test's app runs on: `postgresql` unless parametrized."""
    return getattr(request, "param", "postgresql")


@pytest.fixture(scope="session")
def app(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app on a freshly migrated test database (migrations run once per session)."""
    problem = unreachable_service(DATABASE_URL, REDIS_URL)
    if problem:
        pytest.exit(problem, returncode=3)
    if database == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'herald.db'}"
    else:
        url = DATABASE_URL
        recreate_database(url)
    flask_app = create_app(test_overrides(SQLALCHEMY_DATABASE_URI=url))
    with flask_app.app_context():
        upgrade()
        get_redis().flushdb()
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
    yield flask_app
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def db_session(app: Flask) -> Iterator[object]:
    """Run the test inside one outer transaction that is rolled back at the end.

    The app's engine is swapped for a connection holding that transaction; sessions join it
    with SAVEPOINTs, so a commit or a rollback inside an API call never escapes the test, and
    a rollback keeps the rows the test created before the call.
    """
    routing.CACHE.routes.clear()  # routes cached by earlier tests' rolled-back rows
    with app.app_context():
        engines = db.engines
        original = engines[None]
        connection = original.connect()
        transaction = connection.begin()
        engines[None] = connection
        try:
            yield db.session
        finally:
            db.session.remove()
            engines[None] = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def committed_db(app: Flask) -> Iterator[None]:
    """For tests whose other processes or threads must see the rows: truncate afterwards."""
    yield
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "sqlite":
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
        else:
            _truncate_all()
        db.session.commit()


def _truncate_all(tries: int = 5) -> None:
    """TRUNCATE every table. A real process still running beside the test (a stack's worker
    claiming) can take its table locks in another order: PostgreSQL then aborts one of the
    two as a deadlock; when it is ours, try again."""
    names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    for attempt in range(tries):
        try:
            db.session.execute(text(f"TRUNCATE {names} CASCADE"))
            return
        except OperationalError as exc:
            db.session.rollback()
            if "deadlock detected" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.2)


@pytest.fixture
def client(app: Flask, db_session: object) -> FlaskClient:
    """A test client whose requests run inside the test's transaction."""
    return app.test_client()


@pytest.fixture
def auth_token(db_session: object) -> str:
    """A plain API token for org `test-org`."""
    _, plain = tokens.create_token("test-org")
    return plain


@pytest.fixture
def auth_headers(auth_token: str) -> dict[str, str]:
    """Authorization headers for `test-org`."""
    return {"Authorization": f"Bearer {auth_token}"}


@pytest.fixture
def celery_worker(app: Flask, committed_db: None) -> Iterator[object]:
    """A real Celery worker (solo pool, in a thread) consuming the test Redis."""
    from workers import register_tasks

    register_tasks()

    celery_app = app.extensions["celery"]
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"
    ) as worker:
        yield worker


# End-to-end fixtures: committed rows (other threads read them), so they use `committed_db`.


class _Backlogged(ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: a burst of a pump's 64 senders would see
    refused connections a real receiver never gives (an attempt with status 0, then a retry)."""

    request_queue_size = 128


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1 with a random port."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rx = state["rx"]
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with rx.lock:
                rx.started += 1
            if rx.delay:
                time.sleep(rx.delay)
            with rx.lock:
                rx.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(rx.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = _Backlogged(("127.0.0.1", 0), Handler)
    state["rx"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state["rx"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def live_server(app: Flask, committed_db: None) -> Iterator[str]:
    """The test app served by werkzeug on a random loopback port; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api_token(app: Flask, committed_db: None) -> str:
    """A committed token for org `e2e`."""
    with app.app_context():
        _, plain = tokens.create_token("e2e")
    return plain


@pytest.fixture
def sdk(live_server: str, api_token: str) -> Svix:
    """The official svix SDK pointed at the live server (its own retries off)."""
    return Svix(api_token, SvixOptions(server_url=live_server, retry_schedule=[], timeout=10))


@pytest.fixture
def scripted_receiver() -> Iterator[ScriptedReceiver]:
    """A raw TCP receiver on 127.0.0.1 answering with scripted bytes (tests/support.py)."""
    server = ScriptedReceiver()
    yield server
    server.close()


@pytest.fixture
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project directory for `herald devserver --project-dir` (the quickstart stack of its
    own: var/ with the SQLite file and the dev token is not the checkout's): the checkout's
    Procfile naming gunicorn.conf.py by its path in the checkout (it finds api/ beside itself)
    and a link to the checkout's .venv. A short path: the embedded Redis socket lives in it."""
    directory = tmp_path_factory.mktemp("dev")
    procfile = (ROOT / "Procfile").read_text()
    assert " -c gunicorn.conf.py" in procfile
    conf = ROOT / "gunicorn.conf.py"
    (directory / "Procfile").write_text(procfile.replace(" -c gunicorn.conf.py", f" -c {conf}"))
    (directory / ".venv").symlink_to(ROOT / ".venv")
    return directory
