"""Celery worker side: thin `herald.*` tasks that call api.services (entry: workers.main)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

# Celery's per-run INFO lines: the worker's "received" / "succeeded" (celery.app.trace
# formats) and beat's "Sending due task". Failures and retries have other formats and levels.
PERIODIC_RUN_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
BEAT_SENDING = "Scheduler: Sending due task"


def register_tasks() -> None:
    """Import every task module so its `herald.*` tasks are registered on the current app."""
    import workers.recovery
    import workers.tasks  # noqa: F401


class PeriodicTaskLogFilter(logging.Filter):
    """Demote the per-run lines of the beat schedule's tasks to DEBUG.

    The dispatcher runs every 2 s: at INFO an idle worker and scheduler would print three
    lines per pass. A periodic task's failure, or any other task's lines, pass unchanged.
    """

    def __init__(self, task_names: Iterable[str]) -> None:
        super().__init__()
        self.task_names = frozenset(task_names)

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a periodic run line unless its logger is enabled for DEBUG."""
        if record.levelno != logging.INFO or not self._is_periodic_run(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _is_periodic_run(self, record: logging.LogRecord) -> bool:
        args: Any = record.args
        if record.msg in (LOG_RECEIVED, LOG_SUCCESS) and isinstance(args, Mapping):
            return args.get("name") in self.task_names
        if isinstance(record.msg, str) and record.msg.startswith(BEAT_SENDING):
            return isinstance(args, tuple) and len(args) == 2 and args[1] in self.task_names
        return False


def install_periodic_log_filter(beat_schedule: Mapping[str, Mapping[str, Any]]) -> None:
    """Put one PeriodicTaskLogFilter on Celery's loggers for the tasks of `beat_schedule`."""
    task_filter = PeriodicTaskLogFilter(entry["task"] for entry in beat_schedule.values())
    for name in PERIODIC_RUN_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, PeriodicTaskLogFilter)]:
            logger.removeFilter(old)
        logger.addFilter(task_filter)
