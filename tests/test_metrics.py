"""api/metrics.py: failure classes of real outcomes, and the gunicorn master's handling of the
multiprocess directory (gunicorn.conf.py: cleaned by a fresh master only, dead workers'
live gauges dropped)."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from api import metrics
from api.config import parse_subnets
from api.services.delivery.http_client import post
from tests.support import Receiver, free_port

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = parse_subnets("127.0.0.0/8")


@pytest.mark.parametrize(
    ("status", "delay", "expected"),
    [
        (200, 0.0, "success"),
        (404, 0.0, "4xx"),
        (503, 0.0, "5xx"),
        (302, 0.0, "other"),
        (200, 2.0, "timeout"),
    ],
)
def test_attempt_result_classifies_a_receivers_answer(
    receiver: Receiver, status: int, delay: float, expected: str
) -> None:
    receiver.status, receiver.delay = status, delay
    outcome = post(receiver.url, b"{}", {"content-type": "application/json"}, 0.5, LOOPBACK)
    assert metrics.attempt_result(outcome) == expected


def test_attempt_result_classifies_refused_and_blocked_destinations() -> None:
    closed = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    assert metrics.attempt_result(post(closed, b"{}", {}, 2.0, LOOPBACK)) == "connection"
    assert metrics.attempt_result(post(closed, b"{}", {}, 2.0, ())) == "blocked"  # SSRF guard


def _gunicorn_conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gunicorn_conf_test", ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_samples(directory: Path) -> int:
    """A real process that enables metrics, counts a message, holds a request in progress
    (a live gauge) and dies without cleaning up; returns its pid."""
    code = (
        "import os, sys\n"
        "from api import metrics\n"
        f"metrics.enable({{'METRICS': 'token:x', 'METRICS_DIR': {str(directory)!r}}})\n"
        "metrics.count_message_accepted()\n"
        "metrics._metrics.in_progress.inc()\n"
        "print(os.getpid()); sys.stdout.flush(); os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def _scrape(directory: Path) -> dict[str, float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return {s.name: s.value for family in registry.collect() for s in family.samples}


@pytest.fixture
def metrics_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "metrics"
    monkeypatch.setenv("HERALD_ENV", "testing")
    monkeypatch.setenv("HERALD_METRICS", "token:0123456789abcdef")
    monkeypatch.setenv("HERALD_METRICS_DIR", str(directory))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))  # restored afterwards
    return directory


def test_on_starting_cleans_the_dir_of_a_fresh_master_only(metrics_env: Path) -> None:
    conf = _gunicorn_conf()
    _write_samples(metrics_env)
    assert _scrape(metrics_env)["herald_messages_accepted_total"] == 1
    usr2_master = SimpleNamespace(master_pid=os.getpid(), log=logging.getLogger("test"))
    conf.on_starting(usr2_master)
    assert _scrape(metrics_env)["herald_messages_accepted_total"] == 1  # live workers' files
    fresh_master = SimpleNamespace(master_pid=0, log=logging.getLogger("test"))
    conf.on_starting(fresh_master)
    assert list(metrics_env.glob("*.db")) == []


def test_child_exit_drops_a_dead_workers_live_gauges(metrics_env: Path) -> None:
    conf = _gunicorn_conf()
    conf.on_starting(SimpleNamespace(master_pid=0, log=logging.getLogger("test")))
    pid = _write_samples(metrics_env)
    assert _scrape(metrics_env)["herald_http_requests_in_progress"] == 1
    conf.child_exit(None, SimpleNamespace(pid=pid))
    scraped = _scrape(metrics_env)
    assert scraped.get("herald_http_requests_in_progress", 0) == 0
    assert scraped["herald_messages_accepted_total"] == 1  # counters stay in the sum
