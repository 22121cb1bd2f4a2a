"""Median wall time of `meshtui --help` (target: under 0.35 s).

Run: .venv/bin/python benchmarks/cli_help.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    exe = shutil.which("meshtui", path=str(Path(sys.executable).parent)) or "meshtui"
    for _ in range(3):  # warm the page cache
        subprocess.run([exe, "--help"], capture_output=True, check=True)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"meshtui --help over {args.runs} runs: median {statistics.median(times) * 1000:.0f} ms, "
          f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms (target < 350 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
