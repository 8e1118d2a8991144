"""The README's "Your first webhook" runs as pasted: its code blocks, extracted from the README
itself, against `herald devserver` (the quickstart stack: SQLite + embedded Redis).

The only change made to the pasted text is the ports (8000 → the devserver's, 9999 → the
listener's), so the test never collides with a `make run` on this machine. The stack runs in a
project directory of its own (the checkout's Procfile and venv linked in), so its var/ — the
SQLite file, the dev token — is not the checkout's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.config import ROOT

README = ROOT / "README.md"
HERALD = Path(sys.executable).parent / "herald"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def tour_blocks() -> list[tuple[str, str]]:
    """(language, code) of each block between the README's tour markers."""
    text = README.read_text()
    start, end = text.index("<!-- tour:begin"), text.index("<!-- tour:end -->")
    return BLOCK.findall(text[start:end])


def test_tour_has_a_shell_part_and_an_sdk_part() -> None:
    languages = [language for language, _ in tour_blocks()]
    assert languages == ["sh", "python"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """`herald devserver` in its own project directory; yields (directory, port) once ready."""
    project = tmp_path_factory.mktemp("tour")  # short: the embedded Redis socket lives in it
    procfile = (ROOT / "Procfile").read_text()
    (project / "Procfile").write_text(
        procfile.replace(" -c gunicorn.conf.py", f" -c {ROOT / 'gunicorn.conf.py'}")
    )
    (project / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEST_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "PORT"):
        env.pop(name, None)
    process = subprocess.Popen(
        [str(HERALD), "devserver", "--project-dir", str(project), "--port", str(port)],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    deadline = time.monotonic() + 120
    while not any("| ready in " in line for line in lines):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("devserver never ready:\n" + "".join(lines[-60:]))
        time.sleep(0.2)
    try:
        yield project, port
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise


def on_ports(code: str, web: int, listener: int) -> str:
    """The pasted code with the tour's two ports replaced (and nothing else)."""
    assert "127.0.0.1:8000" in code
    return (
        code.replace("127.0.0.1:8000", f"127.0.0.1:{web}")
        .replace("127.0.0.1:9999", f"127.0.0.1:{listener}")
        .replace("--port 9999", f"--port {listener}")
    )


@pytest.mark.slow
def test_readme_tour_runs_as_pasted(stack: tuple[Path, int]) -> None:
    project, port = stack
    listener = free_port()
    (_, shell), (_, python) = tour_blocks()
    done = subprocess.run(
        ["bash", "-c", on_ports(shell, port, listener)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"POST /hook  webhook-id=msg_\S+", out), out  # herald listen got it
    assert "signature: valid" in out, out  # herald listen checked the fetched secret
    assert '{"id":42}' in out, out  # the body it printed
    log = out.strip().splitlines()[-1]  # the attempt log, the shell part's last curl
    assert '"statusText":"success"' in log.replace(
        " ", ""
    ) and '"responseStatusCode":204' in log.replace(" ", ""), out
    sdk = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", on_ports(python, port, listener)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sdk.returncode == 0, sdk.stdout + sdk.stderr
    printed = sdk.stdout.strip().splitlines()[-1]
    assert printed.startswith("msg_") and f"127.0.0.1:{listener}/hook" in printed, sdk.stdout
