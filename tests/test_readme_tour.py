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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.config import ROOT
from tests.support import Run, free_port

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


@pytest.fixture
def stack(project: Path) -> Iterator[tuple[Path, int]]:
    """`herald devserver` in its own project directory; yields (directory, port) once ready."""
    port = free_port()
    run = Run.start(
        [str(HERALD), "devserver", "--project-dir", str(project), "--port", str(port)], project
    )
    process = run.process
    try:
        run.wait_for(r"\| ready in ", 120)
    except AssertionError:
        os.killpg(process.pid, signal.SIGKILL)
        raise
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
