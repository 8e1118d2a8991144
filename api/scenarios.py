"""Scenarios: seed a sandbox from an empty database (design-notes/003), through the same
schemas and services as the API, so a scenario is also a smoke test of them."""

from __future__ import annotations

from typing import Any

from api.services import applications, endpoints, event_types, messages, tokens
from serializers.applications import ApplicationIn
from serializers.endpoints import EndpointIn
from serializers.event_types import EventTypeIn
from serializers.messages import MessageIn

DEMO_EVENT_TYPES: list[dict[str, Any]] = [
    {"name": "user.signup", "description": "A user signed up"},
    {
        "name": "invoice.paid",
        "description": "An invoice was paid",
        "schemas": {
            "1": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
        },
    },
]


def seed_demo(receiver_url: str = "http://127.0.0.1:9999/webhook") -> list[str]:
    """Create org `demo` with a token, event types, an app, an endpoint and one message;
    returns the lines to print. Safe to run twice (the app and event types are reused)."""
    org, plain = tokens.create_token("demo")
    lines = [f"organization: {org.name} ({org.id})", f"token: {plain}"]
    for spec in DEMO_EVENT_TYPES:
        if not event_types.missing_event_types(org.id, [spec["name"]]):
            continue
        event_types.create_event_type(org.id, EventTypeIn().load(spec))
        lines.append(f"event type: {spec['name']}")
    app, _ = applications.create_application(
        org.id,
        ApplicationIn().load({"name": "Demo shop", "uid": "demo-shop"}),
        get_if_exists=True,
    )
    lines.append(f"application: {app.name} ({app.id}, uid {app.uid})")
    endpoint = endpoints.create_endpoint(
        org.id,
        app.id,
        EndpointIn().load(
            {
                "url": receiver_url,
                "description": "Demo receiver",
                "eventTypes": [spec["name"] for spec in DEMO_EVENT_TYPES],
            }
        ),
    )
    lines.append(f"endpoint: {endpoint.url} ({endpoint.id}, secret {endpoint.secret})")
    message = messages.create_message(
        org.id,
        app.id,
        MessageIn().load(
            {
                "eventType": "user.signup",
                "payload": {"id": "user_1", "email": "ada@example.com"},
            }
        ),
    )
    lines.append(f"message: {message.event_type} ({message.id})")
    return lines
