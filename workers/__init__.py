"""Celery worker side: thin `herald.*` tasks that call api.services (entry: workers.main)."""


def register_tasks() -> None:
    """Import every task module so its `herald.*` tasks are registered on the current app."""
    import workers.recovery
    import workers.tasks  # noqa: F401
