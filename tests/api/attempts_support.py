"""Fixtures and request helpers shared by the attempts API test modules (test_attempts*.py).

A module uses a fixture by binding it at module level (`history = attempts_support.history`);
nothing here is collected as a test.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from api.models import Application, Endpoint, MessageStatus
from tests.api.factories import add_attempt, add_delivery, add_endpoint, add_message

Headers = dict[str, str]


@pytest.fixture
def endpoint(application: Application) -> Endpoint:
    """An endpoint with uid `ep-a`."""
    return add_endpoint(application, uid="ep-a")


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every task published by name during the test (nothing reaches Redis)."""
    calls: list[tuple[Any, ...]] = []

    def fake(name: str, *args: Any) -> bool:
        calls.append((name, *args))
        return True

    monkeypatch.setattr(
        "api.services.delivery.outbox.wake", lambda force=False: fake("herald.pump")
    )
    monkeypatch.setattr("api.services.recovery.enqueue", fake)
    return calls


@pytest.fixture
def history(application: Application, endpoint: Endpoint) -> dict[str, Any]:
    """msg1 failed (500) then succeeded on endpoint; msg2 (channel c1) failed with a 0."""
    msg1 = add_message(application, ago=300, event_id="evt-1")
    msg2 = add_message(application, ago=200, event_type="order.paid", channels=["c1"], tags=["t1"])
    d1 = add_delivery(msg1, endpoint, MessageStatus.SUCCESS)
    d2 = add_delivery(msg2, endpoint, MessageStatus.FAIL)
    return {
        "msg1": msg1,
        "msg2": msg2,
        "a1": add_attempt(d1, MessageStatus.FAIL, 500, ago=100, response="boom"),
        "a2": add_attempt(d1, MessageStatus.SUCCESS, 200, ago=90),
        "a3": add_attempt(d2, MessageStatus.FAIL, 0, ago=80, response="connect refused"),
    }


def get(client: FlaskClient, headers: Headers, path: str, **params: Any) -> Any:
    """GET /api/v1/<path> with query params; returns the response."""
    return client.get(f"/api/v1/{path}", query_string=params, headers=headers)


def ids(response: Any) -> list[str]:
    """The ids of a list response's items."""
    return [item["id"] for item in response.get_json()["data"]]
