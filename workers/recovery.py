"""Celery tasks for endpoint recovery (filled in with the attempts API)."""
