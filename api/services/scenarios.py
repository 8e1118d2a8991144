"""Scenarios: seed a sandbox from an empty database (design-notes/003)."""

from __future__ import annotations

from api.services import tokens


def seed_demo() -> list[str]:
    """Create the demo org and a token; returns the lines to print (extended as features land)."""
    org, plain = tokens.create_token("demo")
    return [f"organization: {org.name} ({org.id})", f"token: {plain}"]
