"""Helpers for end-to-end tests that run the REAL gunicorn (USR2 hand-off, tests/e2e).

- `ensure_database()`: the tests' own PostgreSQL database, created if missing and migrated with
  `flask --app api db upgrade`, as the Procfile's release phase does. Its name and the Redis db
  derive from the suite's TEST_DATABASE_URL / TEST_REDIS_URL (tests/conftest.py), so parallel
  runs on their own test database and Redis db never share them: `<test db>_usr2` on the same
  server, Redis db number + 8 (mod 16). HERALD_USR2_DB, HERALD_USR2_PG_ADMIN and
  HERALD_USR2_REDIS_URL override them.
- `GunicornServer`: `.venv/bin/gunicorn -c gunicorn.conf.py [APP]` from the repo root (the console
  script, as the Procfile runs it: `python -m gunicorn` breaks USR2 re-exec), on a free loopback
  port, with its pidfile in a private HERALD_RUN_DIR. `stop()` sends TERM to every master it saw,
  by pid, after checking the pid still is one of our gunicorn processes, then KILLs leftovers.
- `LoadGenerator`: a few threads issuing GET requests, a new connection per request.
- Deadlines are sized for a slow, loaded 2-core machine (every wait polls and returns as soon
  as its condition holds): BOOT_TIMEOUT, DEPLOY_TIMEOUT, REQUEST_TIMEOUT.
- Process inspection through /proc and `ps` (Linux).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.conftest import DATABASE_URL as SUITE_DATABASE_URL
from tests.conftest import REDIS_URL as SUITE_REDIS_URL
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
GUNICORN = VENV_BIN / "gunicorn"
FLASK = VENV_BIN / "flask"
DEPLOY_USR2 = ROOT / "bin" / "deploy-usr2"

REDIS_DB_OFFSET = 8

# Deadlines for a slow, loaded 2-core machine (waits return as soon as their condition holds).
BOOT_TIMEOUT = 120.0  # a gunicorn generation importing the app; a process exiting
DEPLOY_TIMEOUT = 120  # bin/deploy-usr2's TIMEOUT_S for hand-offs that must complete
REQUEST_TIMEOUT = 30.0  # one HTTP request to gunicorn (a timeout counts as a failed request)


def _suite_server_url(database: str) -> str:
    """The suite's PostgreSQL server (TEST_DATABASE_URL) with another database, libpq form."""
    url = make_url(SUITE_DATABASE_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def _offset_redis_url(url: str, offset: int = REDIS_DB_OFFSET) -> str:
    """The same Redis server, db number + offset (mod 16, Redis's default `databases`)."""
    parts = urlsplit(url)
    db_text = parts.path.lstrip("/") or "0"
    db_number = (int(db_text) + offset) % 16 if db_text.isdigit() else offset
    return urlunsplit(parts._replace(path=f"/{db_number}"))


PG_ADMIN = os.environ.get("HERALD_USR2_PG_ADMIN") or _suite_server_url("postgres")
DB_NAME = os.environ.get("HERALD_USR2_DB") or f"{make_url(SUITE_DATABASE_URL).database}_usr2"
DATABASE_URL = PG_ADMIN.rsplit("/", 1)[0] + "/" + DB_NAME
REDIS_URL = os.environ.get("HERALD_USR2_REDIS_URL") or _offset_redis_url(SUITE_REDIS_URL)

TEST_APP = "tests.e2e.usr2_app:app"  # wraps api.create_app(); see tests/e2e/usr2_app.py
RELEASE_FILE = "usr2-release"
BROKEN_FILE = "usr2-broken-release"
SLOW_FILE = "usr2-slow-boot"


# --- database ----------------------------------------------------------------------------------


def ensure_database() -> str:
    """Create the harness database (DB_NAME) if missing and migrate it; returns its URL."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
            except psycopg.errors.DuplicateDatabase:  # created concurrently by another run
                pass
    env = {
        **clean_environ(),
        "HERALD_ENV": "testing",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
    }
    done = subprocess.run(
        [str(FLASK), "--app", "api", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrations failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return DATABASE_URL


def clean_environ() -> dict[str, str]:
    """os.environ without anything that would steer gunicorn or Herald from outside the test."""
    drop = (
        "GUNICORN_",
        "HERALD_",
        "LISTEN_",
        "WEB_CONCURRENCY",
        "PORT",
        "DATABASE_URL",
        "REDIS_URL",
        "FLASK_",
        "TEST_DATABASE_URL",
        "TEST_REDIS_URL",
    )
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


# --- processes ---------------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) from /proc/PID/stat, or None when the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def is_alive(pid: int | None) -> bool:
    """Running: neither gone nor a zombie."""
    if not pid:
        return False
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X", "x")


def ppid_of(pid: int) -> int | None:
    st = proc_stat(pid)
    return st[1] if st else None


def children(pid: int) -> list[int]:
    """Live (non-zombie) children of pid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pid and st[0] not in ("Z", "X", "x"):
                found.append(int(entry))
    return sorted(found)


def title(pid: int) -> str:
    """What `ps` shows for the process (setproctitle rewrites it: `gunicorn: master [herald]`)."""
    out = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.strip()


def listen_inode(port: int) -> int | None:
    """Inode of the socket listening on 127.0.0.1:port (/proc/net/tcp), or None."""
    want = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        cols = line.split()
        if cols[1] == want and cols[3] == "0A":  # 0A = LISTEN
            return int(cols[9])
    return None


def holds_socket(pid: int, inode: int) -> bool:
    """Whether the process has the socket open (our listener: masters and workers)."""
    target = f"socket:[{inode}]"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# --- gunicorn ----------------------------------------------------------------------------------


class GunicornServer:
    """One `gunicorn -c gunicorn.conf.py` master (and whatever USR2 generations it spawns)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        app: str | None = TEST_APP,
        workers: int = 2,
        database_url: str = DATABASE_URL,
    ) -> None:
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = run_dir / "gunicorn.pid"
        self.log_path = run_dir / "gunicorn.log"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.workers = workers
        self.env = {
            **clean_environ(),
            "HERALD_ENV": "testing",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "PORT": str(self.port),
            "HERALD_BIND": "127.0.0.1",
            "WEB_CONCURRENCY": str(workers),
            "HERALD_RUN_DIR": str(run_dir),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.listener_inode: int | None = None
        self.masters: list[int] = []  # every master pid seen (for cleanup)
        self._reaper: threading.Thread | None = None
        self.boot_seconds: float | None = None  # start(): exec to every worker answering
        # gunicorn command-line settings after `-c gunicorn.conf.py` (they override the file's;
        # a USR2 re-exec keeps argv, so every generation gets them)
        self.extra_args: list[str] = []

    # files the test wrapper app reads at import
    def set_release(self, name: str) -> None:
        (self.run_dir / RELEASE_FILE).write_text(name + "\n")

    def set_broken(self, broken: bool) -> None:
        marker = self.run_dir / BROKEN_FILE
        if broken:
            marker.write_text("the next generation must fail to import the app\n")
        else:
            marker.unlink(missing_ok=True)

    def set_slow_boot(self, seconds: float | None) -> None:
        marker = self.run_dir / SLOW_FILE
        if seconds:
            marker.write_text(f"{seconds}\n")
        else:
            marker.unlink(missing_ok=True)

    def start(self, timeout: float = BOOT_TIMEOUT) -> int:
        """Start the master, wait until all workers answer; returns the master pid.

        `boot_seconds` is how long that took: what a USR2 generation needs too (exec, config,
        fork, every worker importing the app), measured on this machine under its load now.
        """
        started = time.monotonic()
        argv = [str(GUNICORN), "-c", "gunicorn.conf.py", *self.extra_args]
        argv += [self.app] if self.app else []
        log = open(self.log_path, "ab")  # the child keeps its own copy of the fd
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        proc = self.proc
        self.masters.append(proc.pid)
        # reap the original master as soon as it exits: a zombie still answers kill -0
        self._reaper = threading.Thread(target=proc.wait, daemon=True)
        self._reaper.start()
        ok = wait_for(
            lambda: (
                self.master_pid() == proc.pid
                and len(self.worker_pids(proc.pid)) == self.workers
                and self.ping()
            ),
            timeout,
            interval=0.1,
        )
        self.listener_inode = listen_inode(self.port)
        if not ok:
            raise RuntimeError(f"gunicorn did not come up:\n{self.log_tail()}")
        if self.app == TEST_APP:  # a worker has imported the app once it answered: wait for all
            seen: set[int] = set()
            deadline = started + timeout
            while len(seen) < self.workers and time.monotonic() < deadline:
                seen |= self._probe_pids(4)
            if len(seen) < self.workers:
                raise RuntimeError(
                    f"only workers {sorted(seen)} answered in {timeout:.0f} s:\n{self.log_tail()}"
                )
        self.boot_seconds = time.monotonic() - started
        print(f"[gunicorn] {self.workers} workers up in {self.boot_seconds:.1f} s")
        return proc.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The original master's Popen (it exits after a hand-off)."""
        assert self.proc is not None, "gunicorn was not started"
        return self.proc

    def _probe_pids(self, n: int) -> set[int]:
        found = set()
        for _ in range(n):
            r = requests.get(
                self.base_url + "/api/v1/health/ping",
                timeout=REQUEST_TIMEOUT,
                headers={"Connection": "close"},
            )
            if "X-Herald-Worker-Pid" in r.headers:
                found.add(int(r.headers["X-Herald-Worker-Pid"]))
        return found

    def ping(self) -> bool:
        try:
            r = requests.get(self.base_url + "/api/v1/health/ping", timeout=5)
            return r.status_code == 204
        except requests.RequestException:
            return False

    def master_pid(self) -> int | None:
        return read_pid(self.pidfile)

    def new_master_file_pid(self) -> int | None:
        return read_pid(Path(str(self.pidfile) + ".2"))

    def worker_pids(self, master: int) -> list[int]:
        return [p for p in children(master) if "worker" in title(p)]

    def usr2_children(self, master: int, before: Iterable[int] = ()) -> list[int]:
        """A USR2 generation's master: a child of `master` that is not a worker (its title is
        `gunicorn: master [herald.2]`, or the gunicorn command line between exec and
        setproctitle). `before`: children that existed before USR2 (its workers). Titles, not
        /proc/PID/environ: setproctitle overwrites the environment block (GUNICORN_PID)."""
        found = []
        for pid in children(master):
            if pid in before:
                continue
            t = title(pid)
            if "worker [" in t or (t.startswith("gunicorn: ") and ".2]" not in t):
                continue
            if "gunicorn" in t:
                found.append(pid)
        return found

    def track(self, pid: int | None) -> None:
        if pid and pid not in self.masters:
            self.masters.append(pid)

    def deploy(self, timeout_s: int = DEPLOY_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run bin/deploy-usr2 against our pidfile (blocking)."""
        t0 = time.monotonic()
        done = subprocess.run(
            [str(DEPLOY_USR2), str(self.pidfile), str(timeout_s)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s + 120,  # the script's own waits after its timeout (stopping)
        )
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
        print(f"[deploy] exit {done.returncode} after {time.monotonic() - t0:.1f} s: {last[0]}")
        for pid in re.findall(r"\b(?:new|old)(?: master)?[= ](\d+)", done.stdout + done.stderr):
            self.track(int(pid))
        self.track(self.master_pid())
        return done

    def deploy_async(self, timeout_s: int = DEPLOY_TIMEOUT) -> Deploy:
        """Start bin/deploy-usr2 against our pidfile; its output is collected as it comes."""
        return Deploy(self, timeout_s)

    def _ours(self, pid: int) -> bool:
        """Still one of our gunicorn processes (guards against pid reuse before signalling): it
        holds our listening socket, or is one of our masters still starting or stopping."""
        if not is_alive(pid) or "gunicorn" not in title(pid):
            return False
        if self.listener_inode is not None and holds_socket(pid, self.listener_inode):
            return True
        return self.proc is not None and pid == self.proc.pid and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> None:
        """TERM every master we know of (by pid), wait, then KILL whatever is left."""
        self.track(self.master_pid())
        self.track(self.new_master_file_pid())
        for master in list(self.masters):
            if is_alive(master):
                for child in self.usr2_children(master, self.worker_pids(master)):
                    self.track(child)
        procs = set()
        for master in self.masters:
            if self._ours(master):
                procs.add(master)
                procs.update(p for p in children(master) if self._ours(p))
        for master in self.masters:
            if master in procs:
                try:
                    os.kill(master, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if not wait_for(lambda: not any(is_alive(p) for p in procs), timeout, interval=0.1):
            for pid in procs:
                if self._ours(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            wait_for(lambda: not any(is_alive(p) for p in procs), 30.0, interval=0.1)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        # the access log is noisy: keep gunicorn's own lines, then the last ones
        own = [ln for ln in text.splitlines() if not re.search(r'"GET /api/v1/health', ln)]
        return "\n".join(own[-lines:])


class Deploy:
    """bin/deploy-usr2 running in the background (`GunicornServer.deploy_async`)."""

    def __init__(self, server: GunicornServer, timeout_s: int) -> None:
        self.server, self.timeout_s = server, timeout_s
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(DEPLOY_USR2), str(server.pidfile), str(timeout_s)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.handed_off = False  # for the caller's bookkeeping
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def new_master(self) -> int | None:
        m = re.search(r"new master (\d+) is starting", self.output())
        return int(m[1]) if m else None

    def wait(self) -> int:
        rc = self.proc.wait(self.timeout_s + 120)
        for reader in self._readers:
            reader.join(10)
        for pid in re.findall(r"\b(?:new|old)(?: master)?[= ](\d+)", self.output()):
            self.server.track(int(pid))
        self.server.track(self.server.master_pid())
        last = self.lines[-1] if self.lines else ""
        print(f"[deploy] exit {rc} after {time.monotonic() - self.started:.1f} s: {last}")
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Hold:
    """A request held in a gunicorn worker until `release()` (tests/e2e/usr2_app.py's
    `/__e2e/hold/<name>`): a long request in flight, with no guess of how long is long enough.
    Mind gunicorn's `timeout` and `graceful_timeout` (30 s): a worker held longer is killed."""

    def __init__(self, server: GunicornServer, name: str) -> None:
        self.server, self.name = server, name
        self.entered = server.run_dir / f"usr2-hold-{name}.in"
        self.go = server.run_dir / f"usr2-hold-{name}.go"
        self.response: requests.Response | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._get, daemon=True)

    def _get(self) -> None:
        try:
            self.response = requests.get(
                f"{self.server.base_url}/__e2e/hold/{self.name}", timeout=600
            )
        except requests.RequestException as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def start(self, timeout: float = BOOT_TIMEOUT) -> Hold:
        """Send the request; return once a worker is holding it."""
        self._thread.start()
        if not wait_for(lambda: self.entered.exists() or not self._thread.is_alive(), timeout):
            raise AssertionError(f"hold {self.name}: no worker took the request in {timeout} s")
        if not self.entered.exists():
            raise AssertionError(f"hold {self.name}: {self.error or self.response}")
        return self

    @property
    def worker(self) -> int:
        return int(self.entered.read_text())

    def release(self, timeout: float = BOOT_TIMEOUT) -> requests.Response:
        """Let the request finish; returns its response (raises if it failed)."""
        self.go.write_text("go\n")
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"hold {self.name}: no answer {timeout} s after release"
        assert self.response is not None, f"hold {self.name} failed: {self.error}"
        return self.response


# --- load --------------------------------------------------------------------------------------


@dataclass
class Result:
    start: float  # monotonic
    end: float
    path: str
    status: int | None
    release: str | None
    worker: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass
class LoadGenerator:
    """`threads` threads GETting `paths` in turn, one new connection per request."""

    base_url: str
    paths: Sequence[str] = ("/api/v1/health", "/api/v1/health/ping")
    threads: int = 8
    pause: float = 0.05  # per thread between requests: keeps the load modest on 2 shared cores
    timeout: float = REQUEST_TIMEOUT
    max_requests: int = 20000
    results: list[Result] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> LoadGenerator:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, index: int) -> None:
        n = index
        while not self._stop.is_set() and len(self.results) < self.max_requests:
            path = self.paths[n % len(self.paths)]
            n += 1
            t0 = time.monotonic()
            try:
                r = requests.get(
                    self.base_url + path, timeout=self.timeout, headers={"Connection": "close"}
                )
                pid = r.headers.get("X-Herald-Worker-Pid")
                res = Result(
                    t0,
                    time.monotonic(),
                    path,
                    r.status_code,
                    r.headers.get("X-Herald-Release"),
                    int(pid) if pid else None,
                    None if r.ok else f"HTTP {r.status_code}: {r.text[:200]}",
                )
            except requests.RequestException as exc:
                res = Result(
                    t0, time.monotonic(), path, None, None, None, f"{type(exc).__name__}: {exc}"
                )
            with self._lock:
                self.results.append(res)
            if self.pause:
                self._stop.wait(self.pause)

    def count(self, since: float | None = None) -> int:
        """Requests finished so far (that started after monotonic time `since`)."""
        with self._lock:
            return sum(1 for r in self.results if since is None or r.start > since)

    def wait_count(self, n: int, since: float | None = None, timeout: float = BOOT_TIMEOUT) -> None:
        """Keep the load on until `n` requests (started after `since`) finished (bounded)."""
        start = time.monotonic()
        if not wait_for(lambda: self.count(since) >= n, timeout, interval=0.05):
            raise AssertionError(
                f"only {self.count(since)} requests in {timeout:.0f} s, wanted {n}: "
                f"{summary(self.results)}"
            )
        print(f"[load] {n} requests in {time.monotonic() - start:.1f} s")

    def stop(self) -> list[Result]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)
        return list(self.results)

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def failures(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if not r.ok]


def summary(results: Sequence[Result]) -> str:
    """One line: counts per release and failures, max latency."""
    by_release: dict[str, int] = {}
    for r in results:
        key = r.release or "-"
        by_release[key] = by_release.get(key, 0) + 1
    worst = max((r.end - r.start for r in results), default=0.0)
    failed = failures(results)
    first = f"; first failure: {failed[0].error}" if failed else ""
    return (
        f"{len(results)} requests, {len(failed)} failed, per release {by_release}, "
        f"max latency {worst:.2f}s{first}"
    )


def make_token(server: GunicornServer, org_prefix: str) -> str:
    """A token of a new org, made with the CLI in the server's environment (its database)."""
    done = subprocess.run(
        [str(FLASK), "--app", "api", "token", "create", "--org", f"{org_prefix}-{time.time_ns()}"],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]
