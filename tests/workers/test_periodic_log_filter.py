"""The periodic-task log filter (workers/__init__.py): real records through Celery's loggers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from celery.app import trace
from flask import Flask

from workers import PERIODIC_RUN_LOGGERS, PeriodicTaskLogFilter, install_periodic_log_filter


class Collect(logging.Handler):
    """Keeps every record that reaches it."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected(app: Flask) -> Iterator[Collect]:
    """The filter installed for the app's beat schedule, as workers/main.py does; Celery's
    loggers at INFO (as `--loglevel INFO` sets them) feeding one collecting handler."""
    handler = Collect()
    loggers = [logging.getLogger(name) for name in PERIODIC_RUN_LOGGERS]
    saved = [(lg.level, lg.propagate, list(lg.filters)) for lg in loggers]
    install_periodic_log_filter(app.extensions["celery"].conf.beat_schedule)
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.propagate = False
        lg.addHandler(handler)
    yield handler
    for lg, (level, propagate, filters) in zip(loggers, saved, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate
        lg.filters[:] = filters


def run_lines(name: str) -> None:
    """What a worker logs for one run of task `name`: received, then succeeded."""
    context = {"id": "c0ffee", "name": name, "args": "()", "kwargs": "{}", "eta": None}
    logging.getLogger("celery.worker.strategy").info(
        trace.LOG_RECEIVED, context, extra={"data": context}
    )
    trace.info(trace.LOG_SUCCESS, {"id": "c0ffee", "name": name, "return_value": 0, "runtime": 0})


def test_filter_silences_periodic_runs_at_info(collected: Collect) -> None:
    run_lines("herald.dispatch_due")
    run_lines("herald.purge_expired_payloads")
    logging.getLogger("celery.beat").info(
        "Scheduler: Sending due task %s (%s)", "dispatch-due", "herald.dispatch_due"
    )
    assert collected.records == []


def test_filter_keeps_other_tasks_runs(collected: Collect) -> None:
    run_lines("herald.deliver")
    assert [r.getMessage() for r in collected.records] == [
        "Task herald.deliver[c0ffee] received",
        "Task herald.deliver[c0ffee] succeeded in 0s: 0",
    ]
    assert {r.levelname for r in collected.records} == {"INFO"}


def test_filter_keeps_periodic_task_failures(collected: Collect) -> None:
    failure = {
        "id": "c0ffee",
        "name": "herald.dispatch_due",
        "exc": "OperationalError('db down')",
        "description": "raised unexpected",
    }
    logging.getLogger("celery.app.trace").error(trace.LOG_FAILURE, failure)
    [record] = collected.records
    assert record.levelname == "ERROR" and "herald.dispatch_due[c0ffee] raised" in (
        record.getMessage()
    )


def test_filter_shows_periodic_runs_as_debug_at_debug(collected: Collect) -> None:
    logging.getLogger("celery.app.trace").setLevel(logging.DEBUG)
    trace.info(
        trace.LOG_SUCCESS,
        {"id": "1", "name": "herald.dispatch_due", "return_value": 3, "runtime": 0},
    )
    [record] = collected.records
    assert record.levelname == "DEBUG"


def test_install_replaces_an_earlier_filter(app: Flask) -> None:
    schedule = app.extensions["celery"].conf.beat_schedule
    loggers = [logging.getLogger(name) for name in PERIODIC_RUN_LOGGERS]
    saved = [list(lg.filters) for lg in loggers]
    try:
        install_periodic_log_filter(schedule)
        install_periodic_log_filter(schedule)
        for lg in loggers:
            assert sum(isinstance(f, PeriodicTaskLogFilter) for f in lg.filters) == 1
    finally:
        for lg, filters in zip(loggers, saved, strict=True):
            lg.filters[:] = filters
