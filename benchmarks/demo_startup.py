"""Seconds from `meshtui demo --headless` to the first figures a client can read
(target: first stats within 5 s of start).

Run: .venv/bin/python benchmarks/demo_startup.py [--runs 3] [--no-prometheus]
(--no-prometheus: the demo without its Prometheus pod, to see what that pod costs)
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time


def once(extra: list[str]) -> tuple[float, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        server = f"127.0.0.1:{s.getsockname()[1]}"
    cmd = [sys.executable, "-m", "meshtui", "--server", server]
    t0 = time.monotonic()
    demo = subprocess.Popen([*cmd, "demo", "--headless", *extra], stderr=subprocess.PIPE, text=True)
    try:
        while "controller at" not in demo.stderr.readline():  # type: ignore[union-attr]
            if demo.poll() is not None:
                raise SystemExit("demo failed to start")
        ready = time.monotonic() - t0
        while True:
            out = subprocess.run([*cmd, "stat", "deploy", "-n", "emojivoto", "-o", "json"],
                                 capture_output=True, text=True)
            if out.returncode == 0 and any(r["rps"] for r in json.loads(out.stdout)):
                return ready, time.monotonic() - t0
            time.sleep(0.1)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-prometheus", action="store_true")
    a = ap.parse_args()
    for _ in range(a.runs):
        ready, first = once(["--prometheus-listen", "none"] if a.no_prometheus else [])
        print(f"every pod ready after {ready:.1f}s; first stats after {first:.1f}s (target <= 5s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
