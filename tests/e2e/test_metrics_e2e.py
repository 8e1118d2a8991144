"""Prometheus metrics across real processes: two gunicorn workers and a Celery worker (+ beat)
write into one multiprocess directory, and one scrape sums them (api/metrics.py).

Real gunicorn (tests/e2e/gunicorn_harness.py), the Procfile's worker and beat
(tests/e2e/processes.py), a local receiver; the Grafana dashboard's every metric is checked
against the live scrape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.gunicorn_harness import (
    REQUEST_TIMEOUT,
    ROOT,
    GunicornServer,
    ensure_database,
    make_token,
)
from tests.e2e.processes import Stack
from tests.support import Receiver, eventually, free_port

pytestmark = pytest.mark.slow

METRICS_TOKEN = "scrape-secret-0123456789"
DASHBOARD = ROOT / "api" / "grafana-dashboard.json"
SETTINGS = {
    "HERALD_RETRY_SCHEDULE": "1",  # one retry, a second after the first failure
    "HERALD_ENDPOINT_DISABLE_AFTER": "0",  # disabled at its second failure in a row
    "HERALD_DISPATCH_INTERVAL": "0.5",
}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[GunicornServer]:
    server = GunicornServer(tmp_path / "run", database_url=ensure_database())
    server.env.update(SETTINGS, HERALD_METRICS_DIR=str(tmp_path / "metrics"))
    try:
        yield server
    finally:
        server.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def dashboard_metric_names() -> set[str]:
    """Every herald_* name in the dashboard's panel expressions."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bherald_[a-z0-9_]+", expr)}


def exposed_names(text: str) -> set[str]:
    """Every sample name of a scrape (histograms as _bucket/_sum/_count)."""
    return {name for name, _ in samples(text)}


def test_metrics_add_up_across_gunicorn_and_celery_and_match_the_dashboard(
    web: GunicornServer, receiver: Receiver, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    stale = MmapedDict(str(metrics_dir / "counter_999999.db"))  # a previous run's samples
    key = mmap_key("herald_messages_accepted", "herald_messages_accepted_total", [], [], "")
    stale.write_value(key, 1000.0, 0.0)
    stale.close()
    web.env["HERALD_METRICS"] = f"token:{METRICS_TOKEN}"
    web.start()
    assert not (metrics_dir / "counter_999999.db").exists()  # a fresh master cleans the dir
    token = make_token(web, "metrics")
    auth = {"Authorization": f"Bearer {token}", "Connection": "close"}
    stack = Stack(web.env["REDIS_URL"], tmp_path)
    stack.env.update(
        SETTINGS,
        DATABASE_URL=web.env["DATABASE_URL"],
        HERALD_METRICS=web.env["HERALD_METRICS"],
        HERALD_METRICS_DIR=str(metrics_dir),
    )

    def post(path: str, body: dict[str, object]) -> requests.Response:
        r = requests.post(web.base_url + path, json=body, headers=auth, timeout=REQUEST_TIMEOUT)
        assert r.status_code in (201, 202), r.text
        return r

    for uid, url in (
        ("ok", receiver.url + "/ok"),
        ("retry", receiver.url + "/retry"),
        ("blocked", "http://10.255.255.1:9/private"),  # refused by the SSRF guard
    ):
        post("/api/v1/app", {"name": uid, "uid": f"m-{uid}"})
        post(f"/api/v1/app/m-{uid}/endpoint", {"url": url})

    def scrape() -> str:
        r = requests.get(
            web.base_url + "/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=REQUEST_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return r.text

    try:
        stack.start("worker")
        stack.start("beat")
        web_pids: set[int] = set()
        sent = 0
        while sent < 4 or (len(web_pids) < 2 and sent < 40):  # both gunicorn workers ingest
            r = post("/api/v1/app/m-ok/msg", {"eventType": "m.ok", "payload": {"n": sent}})
            web_pids.add(int(r.headers["X-Herald-Worker-Pid"]))
            sent += 1
        assert len(web_pids) == 2
        receiver.wait_for(sent)
        receiver.statuses = [200] * sent + [500]  # the retry's first attempt fails, then 200
        post("/api/v1/app/m-retry/msg", {"eventType": "m.retry", "payload": {}})
        receiver.wait_for(sent + 2)
        post("/api/v1/app/m-blocked/msg", {"eventType": "m.blocked", "payload": {}})
        attempts = "herald_delivery_attempts_total"
        expected = {
            ("herald_messages_accepted_total", ()): sent + 2.0,
            (attempts, (("result", "success"),)): sent + 1.0,
            (attempts, (("result", "5xx"),)): 1.0,
            (attempts, (("result", "blocked"),)): 2.0,
            ("herald_delivery_retries_scheduled_total", ()): 2.0,
            ("herald_delivery_retries_exhausted_total", ()): 1.0,
            ("herald_endpoints_disabled_total", ()): 1.0,
            ("herald_delivery_attempt_duration_seconds_count", ()): sent + 4.0,
            ("herald_queue_due", ()): 0.0,
            ("herald_queue_leased", ()): 0.0,
            ("herald_postgres_up", ()): 1.0,
            ("herald_redis_up", ()): 1.0,
            ("herald_build_info", (("version", "0.1.0"),)): 1.0,
        }

        def settled() -> str | None:
            text = scrape()
            got = samples(text)
            return text if all(got.get(k) == v for k, v in expected.items()) else None

        try:
            text = eventually(settled, what="the expected counters")
        except AssertionError:
            got = samples(scrape())
            raise AssertionError({k: (got.get(k), v) for k, v in expected.items()}) from None
        celery_pid = stack.procs["worker"].pid
    finally:
        stack.stop_all()
    msg_route = "/api/v1/app/<app_id>/msg"
    http = value(text, "herald_http_requests_total", method="POST", route=msg_route, status="202")
    assert http == sent + 2
    assert (
        value(text, "herald_http_request_duration_seconds_count", method="POST", route=msg_route)
        == sent + 2
    )
    for pid in (*web_pids, celery_pid):  # each process wrote its own samples
        assert (metrics_dir / f"counter_{pid}.db").exists(), sorted(
            p.name for p in metrics_dir.iterdir()
        )
    missing = dashboard_metric_names() - exposed_names(text)
    assert dashboard_metric_names() and not missing, missing


def test_metrics_bind_mode_serves_the_scrape_from_the_master(web: GunicornServer) -> None:
    port = free_port()
    web.env["HERALD_METRICS"] = f"bind:127.0.0.1:{port}"
    web.start()
    assert requests.get(web.base_url + "/metrics", timeout=REQUEST_TIMEOUT).status_code == 404
    for _ in range(6):
        assert web.ping()

    def scraped() -> str | None:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=REQUEST_TIMEOUT)
        except requests.ConnectionError:
            return None
        pings = value(
            r.text,
            "herald_http_requests_total",
            method="GET",
            route="/api/v1/health/ping",
            status="204",
        )
        return r.text if pings is not None and pings >= 6 else None

    text = eventually(scraped, what="the master's metrics listener")
    assert value(text, "herald_build_info", version="0.1.0") == 1


def test_metrics_survive_a_usr2_hand_off(web: GunicornServer) -> None:
    """The new master of a USR2 deploy keeps the old workers' samples (it does not clean the
    directory the live generation writes into), and the old workers' exit drops nothing but
    their live gauges: the counters go on from where they were."""
    web.env["HERALD_METRICS"] = f"token:{METRICS_TOKEN}"
    web.start()

    def pings() -> float:
        r = requests.get(
            web.base_url + "/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=REQUEST_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        found = value(
            r.text,
            "herald_http_requests_total",
            method="GET",
            route="/api/v1/health/ping",
            status="204",
        )
        return found or 0.0

    start = pings()  # the harness pinged while the workers booted
    for _ in range(20):
        assert web.ping()
    before = pings()
    assert before >= start + 20
    old_workers = set(web.worker_pids(web.master_pid() or 0))
    done = web.deploy()
    assert done.returncode == 0, done.stdout + done.stderr
    new_workers = set(web.worker_pids(web.master_pid() or 0))
    assert new_workers and not new_workers & old_workers  # a new generation serves
    for _ in range(5):
        assert web.ping()
    assert pings() >= before + 5  # not restarted from zero by the new master
