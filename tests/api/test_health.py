"""Health endpoints: dependency check and ping."""

from __future__ import annotations

from flask.testing import FlaskClient

from api import create_app
from tests.conftest import test_overrides


def test_get_health_returns_204_when_dependencies_answer(client: FlaskClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 204
    assert client.get("/api/v1/health/").status_code == 204  # the SDK's fixture polls with a slash


def test_get_ping_returns_204(client: FlaskClient) -> None:
    assert client.get("/api/v1/health/ping").status_code == 204


def test_get_health_returns_503_when_redis_is_down(db_session: object) -> None:
    broken = create_app(test_overrides(REDIS_URL="redis://127.0.0.1:1/0"))
    response = broken.test_client().get("/api/v1/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "unhealthy" and "redis" in body["detail"]


def test_get_ping_returns_204_when_redis_is_down() -> None:
    broken = create_app(test_overrides(REDIS_URL="redis://127.0.0.1:1/0"))
    assert broken.test_client().get("/api/v1/health/ping").status_code == 204
