"""Celery worker side: thin `herald.*` tasks that call api.services (entry: workers.main)."""
