"""GET /metrics (api/blueprints/metrics.py) as HERALD_METRICS says, and its settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from api import create_app
from api.config import ConfigError, load_config
from tests.conftest import test_overrides

TOKEN = "scrape-secret-0123456789"


@pytest.fixture(scope="session")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per test process (prometheus_client opens its files once per process)."""
    return tmp_path_factory.mktemp("metrics")


def metrics_app(app: Flask, metrics_dir: Path, mode: str) -> Flask:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]  # the session app's migrated database
    return create_app(
        test_overrides(METRICS=mode, METRICS_DIR=str(metrics_dir), SQLALCHEMY_DATABASE_URI=uri)
    )


def test_metrics_are_not_found_when_off(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/metrics")
    assert r.status_code == 404
    assert r.json["code"] == "not_found"


def test_metrics_are_not_served_by_the_app_in_bind_mode(app: Flask, metrics_dir: Path) -> None:
    bound = metrics_app(app, metrics_dir, "bind:127.0.0.1:9100")
    assert bound.test_client().get("/metrics").status_code == 404


@pytest.mark.postgresql_only
def test_metrics_need_the_metrics_token(app: Flask, metrics_dir: Path, auth_headers) -> None:  # type: ignore[no-untyped-def]
    client = metrics_app(app, metrics_dir, f"token:{TOKEN}").test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and wrong.json["code"] == "authentication_failed"
    api_token = client.get("/metrics", headers=auth_headers)  # an org's API token: no
    assert api_token.status_code == 401
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.content_type.startswith("text/plain")
    text = r.get_data(as_text=True)
    assert 'herald_build_info{version="0.1.0"} 1.0' in text
    assert "herald_postgres_up 1.0" in text and "herald_redis_up 1.0" in text
    assert "herald_queue_oldest_due_age_seconds" in text


@pytest.mark.parametrize(
    "value", ["on", "token:short", "token:", "bind:9100", "bind:127.0.0.1:notaport", "bind:h:0"]
)
def test_load_config_refuses_a_bad_metrics_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="HERALD_METRICS must be"):
        load_config(environ={"HERALD_ENV": "testing", "HERALD_METRICS": value})


def test_load_config_parses_the_metrics_settings(tmp_path: Path) -> None:
    env = {"HERALD_ENV": "testing", "HERALD_RUN_DIR": str(tmp_path)}
    assert load_config(environ=env)["METRICS"] == "off"
    assert load_config(environ=env)["METRICS_DIR"] == str(tmp_path / "metrics")
    bind = load_config(environ={**env, "HERALD_METRICS": "bind:0.0.0.0:9100"})
    assert (bind["METRICS"], bind["METRICS_BIND"]) == ("bind", ("0.0.0.0", 9100))
    token = load_config(environ={**env, "HERALD_METRICS": f"token:{TOKEN}"})
    assert (token["METRICS"], token["METRICS_TOKEN"]) == ("token", TOKEN)
