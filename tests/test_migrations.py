"""Migrations: empty → head on PostgreSQL and SQLite, and models match migrations."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url

from api import create_app
from api.extensions import db
from api.models import Organization
from tests.conftest import DATABASE_URL, recreate_database, test_overrides

TABLES = {
    "organization",
    "api_token",
    "application",
    "event_type",
    "endpoint",
    "message",
    "delivery",
    "message_attempt",
    "background_task",
    "alembic_version",
}


def _upgrade_and_diff(overrides: dict[str, object]) -> tuple[set[str], list[object]]:
    app = create_app(overrides)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    return tables, diff


def test_upgrade_postgresql_from_empty_matches_models() -> None:
    url = DATABASE_URL.rsplit("/", 1)[0] + "/" + DATABASE_URL.rsplit("/", 1)[1] + "_migrations"
    recreate_database(url)
    tables, diff = _upgrade_and_diff(test_overrides(SQLALCHEMY_DATABASE_URI=url))
    assert TABLES <= tables
    assert diff == []


def test_upgrade_sqlite_from_empty_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    tables, diff = _upgrade_and_diff(test_overrides(SQLALCHEMY_DATABASE_URI=url))
    assert TABLES <= tables
    assert diff == []


@pytest.mark.parametrize("module", ["api", "serializers"])
def test_package_never_imports_workers(module: str) -> None:
    root = Path(__file__).resolve().parent.parent / module
    offenders = [
        str(path)
        for path in root.rglob("*.py")
        if any(
            line.strip().startswith(("import workers", "from workers"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []


def test_ids_sort_bytewise_on_a_locale_collated_database() -> None:
    """An ICU en-US database would put `org_a` before `org_B`; ids must sort like Python."""
    url = DATABASE_URL.rsplit("/", 1)[0] + "/" + DATABASE_URL.rsplit("/", 1)[1] + "_icu"
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(
            f'CREATE DATABASE "{parsed.database}" TEMPLATE template0 '
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    app = create_app(test_overrides(SQLALCHEMY_DATABASE_URI=url))
    ids = ["org_a0000000000000000000000000", "org_B0000000000000000000000000"]
    with app.app_context():
        upgrade()
        for n, org_id in enumerate(ids):
            db.session.add(Organization(id=org_id, name=f"o{n}"))
        db.session.commit()
        stored = list(db.session.scalars(select(Organization.id).order_by(Organization.id)))
        raw = db.session.scalars(
            text("SELECT x FROM (VALUES ('org_a'), ('org_B')) v(x) ORDER BY x")
        )
        locale_order = list(raw)
        db.session.remove()
        db.engine.dispose()
    assert locale_order == ["org_a", "org_B"]  # the database's own collation is not bytewise
    assert stored == sorted(ids)  # ids are: COLLATE "C"
