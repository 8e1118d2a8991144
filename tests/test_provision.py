"""Creating a missing database (api/provision.py); the PostgreSQL CREATE is in test_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from api.provision import DatabaseUnreachable, ensure_database
from tests.conftest import DATABASE_URL


def test_ensure_database_makes_sqlite_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'herald.db'}"
    assert ensure_database(url) == f"directory {tmp_path / 'a' / 'b'}"
    assert (tmp_path / "a" / "b").is_dir()
    assert ensure_database(url) is None


def test_ensure_database_leaves_existing_postgresql_database(app: Flask) -> None:
    assert ensure_database(DATABASE_URL) is None  # the suite's database, made by `app`


def test_ensure_database_reports_unreachable_server() -> None:
    with pytest.raises(DatabaseUnreachable, match="port 1 failed"):
        ensure_database("postgresql+psycopg://postgres@127.0.0.1:1/herald_nowhere")
