"""Operator CLI commands (the app's CLI through the test runner; `herald` as installed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from api.extensions import db
from api.models import ApiToken, Application, Delivery, Message, Organization
from api.services.tokens import authenticate
from tests.conftest import DATABASE_URL

HERALD = Path(sys.executable).parent / "herald"  # the console script from pyproject.toml
CREATEDB_NAME = "herald_cli_createdb"


def herald(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `herald` command with `env` added to the environment."""
    return subprocess.run(
        [str(HERALD), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_token_create_prints_working_token_last(app: Flask, db_session: object) -> None:
    result = app.test_cli_runner().invoke(args=["token", "create", "--org", "cli-org"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    principal = authenticate(token)
    org = db.session.scalar(select(Organization).where(Organization.name == "cli-org"))
    assert principal is not None and org is not None and principal.org_id == org.id


def test_token_create_reuses_existing_org(app: Flask, db_session: object) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["token", "create", "--org", "twice"])
    runner.invoke(args=["token", "create", "--org", "twice"])
    orgs = db.session.scalar(select(func.count()).where(Organization.name == "twice"))
    tokens = db.session.scalar(
        select(func.count(ApiToken.id)).join(Organization).where(Organization.name == "twice")
    )
    assert (orgs, tokens) == (1, 2)


def test_token_create_requires_org(app: Flask, db_session: object) -> None:
    result = app.test_cli_runner().invoke(args=["token", "create"])
    assert result.exit_code != 0 and "--org" in result.output


def test_scenario_demo_seeds_sandbox(app: Flask, db_session: object) -> None:
    result = app.test_cli_runner().invoke(args=["scenario", "demo"])
    assert result.exit_code == 0, result.output
    assert "token:" in result.output and "message: user.signup" in result.output
    org = db.session.scalar(select(Organization).where(Organization.name == "demo"))
    assert org is not None
    app = db.session.scalar(select(Application).where(Application.org_id == org.id))
    assert app is not None and app.uid == "demo-shop"
    message = db.session.scalar(select(Message).where(Message.app_id == app.id))
    assert message is not None
    deliveries = db.session.scalars(select(Delivery).where(Delivery.msg_id == message.id)).all()
    assert len(deliveries) == 1  # the demo endpoint subscribes to user.signup


def test_scenario_demo_refuses_non_empty_database(app: Flask, db_session: object) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["scenario", "demo"]).exit_code == 0
    again = runner.invoke(args=["scenario", "demo"])
    assert again.exit_code == 1
    assert again.output.strip().splitlines() == [
        "Error: the database already holds 1 application(s); scenario demo seeds an empty "
        "one (--force adds the demo anyway)"
    ]
    assert db.session.scalar(select(func.count(Message.id))) == 1  # nothing more was seeded


def test_scenario_demo_force_seeds_non_empty_database(app: Flask, db_session: object) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["scenario", "demo"]).exit_code == 0
    forced = runner.invoke(args=["scenario", "demo", "--force"])
    assert forced.exit_code == 0, forced.output
    assert db.session.scalar(select(func.count(Application.id))) == 1  # the app is reused
    assert db.session.scalar(select(func.count(Message.id))) == 2


def test_scenario_demo_ignores_what_the_devserver_leaves(app: Flask, db_session: object) -> None:
    """`make run`'s token and the demo application its portal link shows."""
    runner = app.test_cli_runner()
    runner.invoke(args=["token", "create", "--org", "dev"])
    dev = db.session.scalar(select(Organization).where(Organization.name == "dev"))
    assert dev is not None
    db.session.add(Application(org_id=dev.id, name="Demo", uid="demo"))
    db.session.commit()
    result = runner.invoke(args=["scenario", "demo"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def missing_database() -> Iterator[str]:
    """The URL of a database that does not exist on the test server; dropped afterwards."""
    url = make_url(DATABASE_URL).set(database=CREATEDB_NAME)
    admin = url.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    drop = f'DROP DATABASE IF EXISTS "{CREATEDB_NAME}" WITH (FORCE)'
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(drop)
    yield url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(drop)


def test_db_upgrade_creates_missing_postgresql_database(missing_database: str) -> None:
    first = herald("db", "upgrade", DATABASE_URL=missing_database, HERALD_ENV="development")
    assert first.returncode == 0, first.stderr
    assert f"created database {CREATEDB_NAME}" in first.stdout
    with psycopg.connect(missing_database) as conn:
        heads = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = conn.execute("SELECT to_regclass('public.message')").fetchone()
    assert len(heads) == 1 and tables == ("message",)
    again = herald("db", "upgrade", DATABASE_URL=missing_database, HERALD_ENV="development")
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout


def test_db_upgrade_reports_unreachable_server() -> None:
    url = "postgresql://postgres@127.0.0.1:1/herald_nowhere"  # nothing listens on port 1
    result = herald("db", "upgrade", DATABASE_URL=url, HERALD_ENV="development")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach the database: ")


def test_herald_lists_its_commands() -> None:
    result = herald("--help", HERALD_ENV="development")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:")[1].split()
    for name in ("db", "devserver", "listen", "scenario", "token"):
        assert name in commands
    assert "run" not in commands  # `herald devserver` runs the stack, not Flask's dev server
