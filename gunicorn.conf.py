"""gunicorn settings and the zero-downtime USR2 hand-off (see README "Redeploying with USR2").

`kill -USR2 <master>` makes gunicorn exec a new master from the code on disk. The new master
arms the hand-off in `pre_fork`; each of its workers counts itself in `post_worker_init`, i.e.
after it has imported the app; the last one sends SIGTERM (graceful) to the old master. A
release that cannot boot never signals, so the old master keeps serving.
(../shared/GUNICORN-CELERY.md §A: QUIT is a quick shutdown; `<pidfile>.2`, never `.oldbin`.)
"""

import fcntl
import json
import os
import signal

from gunicorn import util

_ROOT = os.path.dirname(os.path.abspath(__file__))
_RUN_DIR = os.environ.get("HERALD_RUN_DIR", os.path.join(_ROOT, "var", "run"))
os.makedirs(_RUN_DIR, exist_ok=True)

bind = "{}:{}".format(os.environ.get("HERALD_BIND", "127.0.0.1"), os.environ.get("PORT", "8000"))
# gevent workers: a client that stops in the middle of its headers holds a greenlet, not the
# worker (tests/e2e/test_slow_clients.py: 50 such connections, ping and message create still
# answer in < 100 ms; sync and gthread with 8 threads time out), at the same throughput
# (bench/ingest.py, same run: sync 293, gthread 318, gevent 300 req/s). psycopg and redis-py
# wait cooperatively under gevent's monkey-patching. One gevent worker per core (at least 2,
# so one busy worker never holds every request): on 2 cores, 2 workers took 879 req/s at 1.69
# ms of web CPU and a p99 of 52 ms, 5 workers 800 req/s at 1.89 ms and 194 ms (bench/ingest.py
# load, same run). A sync or gthread worker class keeps 2 x cores + 1 (its requests block it).
worker_class = os.environ.get("HERALD_WORKER_CLASS", "gevent")
_cores = os.cpu_count() or 1
_default_workers = max(2, _cores) if worker_class == "gevent" else 2 * _cores + 1
workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers)
threads = int(os.environ.get("HERALD_WEB_THREADS", "1"))
wsgi_app = "api:create_app()"
proc_name = "herald"
pidfile = os.environ.get("HERALD_PIDFILE", os.path.join(_RUN_DIR, "gunicorn.pid"))
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("HERALD_LOG_LEVEL", "info").lower()
timeout = 30
graceful_timeout = 30
keepalive = 2
control_socket_disable = True  # the exiting old master would unlink the shared socket path
reuse_port = False  # reuse_port breaks USR2 (the new master gets GUNICORN_FD='')
# Herald's request limits (README "The API"), enforced by gunicorn before the app sees a byte:
# 414 above the request line's limit (8190 is gunicorn's maximum), 431 above the header limits.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Codes of the errors gunicorn answers itself (a request it cannot parse or that is over a limit)
GUNICORN_ERROR_CODES = {
    400: "bad_request",
    403: "insufficient_access",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "server_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's error answer as Herald's JSON `{"code", "detail"}`, not its HTML page.

    Installed over `gunicorn.util.write_error`, the one function gunicorn's workers (sync and
    gthread) write those answers with; tests/e2e/test_gunicorn_errors.py sends the requests.
    """
    code = GUNICORN_ERROR_CODES.get(status_int, "generic_error")
    body = json.dumps({"code": code, "detail": mesg or reason}).encode("ascii")
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error  # read at each call (workers/base.py: util.write_error)


def _handoff_counter(master_pid):
    return os.path.join(_RUN_DIR, f"usr2-booted.{master_pid}")


def _usr2_old_master():
    """The old master's pid if this process belongs to a not-yet-promoted USR2 generation."""
    try:
        old = int(os.environ.get("GUNICORN_PID", "0"))
    except ValueError:
        return None
    if old <= 1:
        return None
    try:  # guard against PID reuse: the old master must be our master's parent
        with open(f"/proc/{os.getppid()}/stat") as stat:
            master_ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return old
    return old if master_ppid == old else None


def on_starting(server):
    """Fail fast (before binding or forking) when the configuration is bad.

    api/config.py is loaded by path (it imports only the standard library): `import api.config`
    would import the whole `api` package (Flask, SQLAlchemy, Celery) into the master, so workers
    forked after a HUP would keep running that old code, and each USR2 master would spend ~2 s
    importing the app before it even binds.
    """
    import importlib.util

    path = os.path.join(_ROOT, "api", "config.py")
    spec = importlib.util.spec_from_file_location("_herald_config_check", path)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    settings = config.load_config()
    _start_metrics(server, settings, config.herald_version())


_metrics = None  # api/metrics.py, loaded by path when HERALD_METRICS is on (on_starting)


def _start_metrics(server, settings, version):
    """Metrics on: every process writes to METRICS_DIR (the workers inherit the variable). A
    fresh master wipes the previous run's samples; a USR2 master (`server.master_pid` set
    from GUNICORN_PID) shares the directory with the live workers of the old one: no wipe.
    bind:<host:port>: this master serves the scrape there."""
    global _metrics
    if settings["METRICS"] == "off":
        return
    import importlib.util

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings["METRICS_DIR"]
    spec = importlib.util.spec_from_file_location(
        "_herald_metrics", os.path.join(_ROOT, "api", "metrics.py")
    )
    _metrics = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_metrics)
    _metrics.METRICS_DIR = settings["METRICS_DIR"]
    if not server.master_pid:
        removed = _metrics.clean_multiprocess_dir(settings["METRICS_DIR"])
        server.log.info("metrics: %d old sample files removed", removed)
    else:
        os.makedirs(settings["METRICS_DIR"], exist_ok=True)
    if settings["METRICS"] == "bind":
        _metrics.serve_forever(settings, version)


def post_fork(server, worker):
    """A worker does not keep the master's metrics listener open."""
    if _metrics is not None:
        _metrics.close_listener_copy()


def child_exit(server, worker):
    """A worker exited: its live gauges leave the sum (prometheus_client multiprocess)."""
    if _metrics is not None:
        _metrics.mark_process_dead(worker.pid, _metrics.METRICS_DIR)


def pre_fork(server, worker):
    """In the new master of a USR2 generation: arm the hand-off counter once."""
    if not server.master_pid or getattr(server, "_herald_armed", False):
        return
    server._herald_armed = True
    with open(_handoff_counter(server.pid), "w") as counter:
        counter.write("0")
    server.log.info("USR2 generation: hand-off armed, old master %s", server.master_pid)


def post_worker_init(worker):
    """After the app is imported: the last new worker sends TERM to the old master.

    Not if this worker was told to stop while it was importing (`worker.alive` is cleared by
    TERM/QUIT): its generation is being shut down (bin/deploy-usr2 timed out, or a sibling
    worker failed to boot) and handing off now would stop both masters.
    """
    old = _usr2_old_master()
    if old is None or not worker.alive:
        return
    path = _handoff_counter(os.getppid())
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        booted = int(os.read(fd, 32) or b"0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, b"%d" % booted)
    finally:
        os.close(fd)
    if booted < worker.cfg.workers or not worker.alive:
        return
    worker.log.info("USR2 hand-off: %d workers booted, SIGTERM to old master %d", booted, old)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.kill(old, signal.SIGTERM)


def on_exit(server):
    """A generation that failed to boot leaves its counter behind: remove it."""
    try:
        os.unlink(_handoff_counter(server.pid))
    except FileNotFoundError:
        pass
