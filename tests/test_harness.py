"""The test harness itself: it drops only a disposable database and stops at once, with one line,
when PostgreSQL or Redis cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from api.extensions import db
from tests.conftest import (
    DATABASE_URL,
    DEFAULT_TEST_DATABASE_URL,
    REDIS_URL,
    UnsafeTestDatabase,
    disposable_database_url,
    same_database,
)
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVER = "postgresql://postgres@127.0.0.1:5432"
THIS_TEST = "tests/test_harness.py::test_app_runs_on_the_test_database"


def test_app_runs_on_the_test_database(app: Flask) -> None:
    with app.app_context():
        assert same_database(db.engine.url.render_as_string(hide_password=False), DATABASE_URL)


def test_disposable_database_url_never_falls_back_to_database_url() -> None:
    url = disposable_database_url({"DATABASE_URL": f"{SERVER}/production"})
    assert make_url(url).database == make_url(DEFAULT_TEST_DATABASE_URL).database


def test_disposable_database_url_takes_test_database_url() -> None:
    url = disposable_database_url(
        {"TEST_DATABASE_URL": f"{SERVER}/mine", "DATABASE_URL": f"{SERVER}/production"}
    )
    assert make_url(url).database == "mine"


@pytest.mark.parametrize(
    "test_url",
    [
        f"{SERVER}/production",
        "postgres://postgres@localhost/production",
        "postgresql+psycopg://postgres@127.0.0.1/production",
    ],
)
def test_disposable_database_url_refuses_the_database_url_database(test_url: str) -> None:
    with pytest.raises(UnsafeTestDatabase, match="refusing to run"):
        disposable_database_url(
            {"TEST_DATABASE_URL": test_url, "DATABASE_URL": f"{SERVER}/production"}
        )


def test_same_database_tells_servers_and_sqlite_files_apart(tmp_path: Path) -> None:
    assert not same_database(f"{SERVER}/a", "postgresql://postgres@127.0.0.1:5433/a")
    assert not same_database(f"{SERVER}/a", "postgresql://postgres@db.example/a")
    assert same_database(
        f"sqlite:///{tmp_path}/x.db", f"sqlite:///{tmp_path}/../{tmp_path.name}/x.db"
    )
    assert not same_database(f"sqlite:///{tmp_path}/x.db", f"{SERVER}/x.db")


# --- the suite run as a newcomer runs it, in a subprocess ---------------------------------------


@pytest.fixture
def user_database() -> Iterator[str]:
    """A database holding someone's table, as `make run` on PostgreSQL would leave it."""
    name = "herald_harness_userdb"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int); INSERT INTO users VALUES (42)")
    yield f"{SERVER}/{name}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_suite(**env: str) -> tuple[int, str, float]:
    """Run one harness test in a fresh pytest; (exit code, output, seconds)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL")
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", THIS_TEST],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def users_left(url: str) -> list[tuple[int]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id FROM users").fetchall()


def other_redis_db() -> str:
    """The test Redis server with another db number (the inner run flushes its db)."""
    base, _, number = REDIS_URL.rpartition("/")
    return f"{base}/{(int(number or 0) + 8) % 16}"


@pytest.mark.slow
def test_suite_with_database_url_set_leaves_that_database_alone(user_database: str) -> None:
    code, output, _ = run_suite(
        DATABASE_URL=user_database,
        TEST_DATABASE_URL=f"{SERVER}/herald_harness_disposable",
        TEST_REDIS_URL=other_redis_db(),
    )
    assert code == 0, output
    assert users_left(user_database) == [(42,)]


@pytest.mark.slow
def test_suite_refuses_a_test_database_that_database_url_names(user_database: str) -> None:
    code, output, _ = run_suite(
        DATABASE_URL=user_database,
        TEST_DATABASE_URL=user_database.replace("127.0.0.1", "localhost"),
        TEST_REDIS_URL=other_redis_db(),
    )
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 4 and len(lines) == 1 and "refusing to run" in lines[0], output
    assert users_left(user_database) == [(42,)]


@pytest.mark.slow
@pytest.mark.parametrize("service", ["PostgreSQL", "Redis"])
def test_suite_with_an_unreachable_service_stops_with_one_line(service: str) -> None:
    port = free_port()
    env = {
        "TEST_DATABASE_URL": f"{SERVER}/herald_harness_disposable",
        "TEST_REDIS_URL": other_redis_db(),
    }
    if service == "PostgreSQL":
        env["TEST_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/herald_test"
    else:
        env["TEST_REDIS_URL"] = f"redis://127.0.0.1:{port}/1"
    code, output, seconds = run_suite(**env)
    named = [line for line in output.splitlines() if f"{service} at" in line]
    assert code == 3 and len(named) == 1 and "unreachable" in named[0], output
    assert len(output.splitlines()) <= 4, output
    assert seconds < 30, f"took {seconds:.1f} s"


@pytest.mark.parametrize(
    ("variable", "url", "service"),
    [
        ("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:{port}/herald_test", "PostgreSQL"),
        ("TEST_REDIS_URL", "redis://127.0.0.1:{port}/1", "Redis"),
    ],
)
def test_ensure_services_names_the_unreachable_service(
    variable: str, url: str, service: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    done = subprocess.run(
        [str(ROOT / "bin" / "ensure-services")],
        env={**environ, variable: url.format(port=free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and f"{service} at 127.0.0.1:" in done.stderr
    assert "unreachable" in done.stderr and variable in done.stderr
