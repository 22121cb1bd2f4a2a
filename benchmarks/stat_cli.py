"""Wall time of `meshtui stat deploy -n emojivoto -o json` against the real demo
(target ≤ 0.5 s): starts `meshtui demo --headless`, waits for its first figures,
then times the command over repeated runs.

Run: .venv/bin/python benchmarks/stat_cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        server = f"127.0.0.1:{s.getsockname()[1]}"
    cmd = [sys.executable, "-m", "meshtui", "--server", server]
    demo = subprocess.Popen([*cmd, "demo", "--headless"], stderr=subprocess.DEVNULL)
    try:
        stat = [*cmd, "stat", "deploy", "-n", "emojivoto", "-o", "json"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(stat, capture_output=True, text=True)
            if out.returncode == 0 and any(r["rps"] for r in json.loads(out.stdout)):
                break
            time.sleep(0.5)
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            subprocess.run(stat, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    times.sort()
    print(f"meshtui stat deploy -n emojivoto -o json over {a.runs} runs: median "
          f"{statistics.median(times) * 1000:.0f} ms, p90 {times[int(len(times) * 0.9)] * 1000:.0f}"
          f" ms, max {times[-1] * 1000:.0f} ms (target <= 500 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
