"""`make bench`: run every benchmark module in turn; each prints raw numbers and same-run ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ORDER = ["ingest", "api_delivery", "delivery"]


def main() -> int:
    """Run the benchmarks named on the command line, or all of them; returns a failure count."""
    here = Path(__file__).resolve().parent
    names = sys.argv[1:] or [n for n in ORDER if (here / f"{n}.py").exists()]
    failures = 0
    for name in names:
        print(f"=== bench.{name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=here.parent)
        failures += code != 0
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
