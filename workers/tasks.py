"""Celery tasks: named `herald.*`, acks_late, arguments are ids and primitives."""

from __future__ import annotations

import logging

from celery import shared_task

from api.extensions import get_redis

logger = logging.getLogger(__name__)


@shared_task(name="herald.ping", acks_late=True)
def ping(token: str) -> str:
    """Record that a worker ran a task inside the app context (used by health and tests)."""
    get_redis().set(f"herald:ping:{token}", "pong", ex=300)
    return token
