"""What a tap subscriber that reads nothing costs the proxied traffic.

Two parts, each printing its figures:

1. The recorder alone (always): microseconds per request (request, response
   start, response end) with nobody tapping, with a tap whose filter matches
   nothing, with a stuck subscriber that matches everything (its queue full,
   every event dropped and counted), and with one whose queue is drained.
2. End to end (needs wrk, nginx and a working ``meshtui proxy``): wrk through the
   proxy's inbound listener to an nginx upstream, in rounds of: a run with no
   tap; a gRPC tap stream is opened and never read; a run while its transport
   windows still take batches; a run once it has stalled. Prints requests/s of
   each, their ratio to the untapped runs (the target: at least 0.90 both
   while the stream still takes batches and once it has stalled), and the
   events the proxy counted as dropped (``meshtui_tap_dropped_events_total``
   on /metrics).

Run: ``.venv/bin/python benchmarks/tap_slow_subscriber.py [--seconds 3] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from meshtui.proxy.tap_hub import TapHub
from meshtui.proxy.telemetry import Direction, Identity, Telemetry
from meshtui.v1 import common_pb2

HEADERS = [(b"host", b"web-svc:80"), (b"user-agent", b"bench"), (b"accept", b"*/*")]


def per_request_us(tel: Telemetry, n: int, drain_every: int = 0) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        obs = tel.request(Direction.INBOUND, ("127.0.0.1", 40000), ("127.0.0.1", 8080), i >> 4,
                          "GET", "http", "web-svc:80", "/api/list", HEADERS)
        obs.response_start(200, HEADERS)
        obs.response_end(120)
        if drain_every and i % drain_every == 0:
            for sub in tel.hub.subscribers:
                tel.hub.take_batch(sub)
    return (time.perf_counter() - t0) / n * 1e6


def recorder_part(n: int) -> None:
    print(f"recorder alone, {n} requests each (µs per request: request + start + end)")
    ident = Identity("emojivoto", "web", "web-0")
    cases = []
    tel = Telemetry(ident)
    cases.append(("nobody tapping", tel, 0))
    tel = Telemetry(ident)
    tel.hub.subscribe(common_pb2.TapMatch(path_prefix="/nothing"))
    cases.append(("a tap matching nothing", tel, 0))
    tel = Telemetry(ident, hub=TapHub(time.monotonic, queue_capacity=10_000))
    stuck = tel.hub.subscribe()
    cases.append(("a stuck tap (queue full)", tel, 0))
    tel = Telemetry(ident, hub=TapHub(time.monotonic, queue_capacity=10_000))
    tel.hub.subscribe()
    cases.append(("a tap drained (batches built)", tel, 500))
    for name, tel, drain in cases:
        per_request_us(tel, n // 10, drain)  # warm up
        us = per_request_us(tel, n, drain)
        print(f"  {name:32s} {us:6.2f} µs")
    print(f"  stuck tap: {stuck.dropped} events dropped and counted, "
          f"{len(stuck.queue)} queued (capacity {stuck.capacity})")


# --- end to end ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_nginx(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    conf = tmp / "nginx.conf"
    temp_paths = "\n".join(f"  {k}_temp_path {tmp}/{k};"
                           for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"""
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp_paths}
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                            stderr=subprocess.DEVNULL)


def wrk(port: int, seconds: float, pid: int | None = None) -> float:
    """Requests/s of one wrk run; with ``pid``, also notes that process's CPU time
    per request in CPU_US (steadier than requests/s on a shared machine)."""
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n:
        raise RuntimeError(f"unreadable wrk output: {out}")
    if pid:
        CPU_US.append((cpu_seconds(pid) - before) / int(n.group(1)) * 1e6)
    return float(m.group(1))


CPU_US: list[float] = []


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dropped_total(admin_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=3) as r:
        text = r.read().decode()
    m = re.search(r"^meshtui_tap_dropped_events_total (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else -1


STUCK_CLIENT = """
import asyncio, sys, grpc
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc
async def main():
    async with grpc.aio.insecure_channel(sys.argv[1]) as ch:
        call = proxy_pb2_grpc.TapStub(ch).Observe(proxy_pb2.ObserveRequest())
        await call.initial_metadata()
        print("subscribed", flush=True)
        await asyncio.sleep(3600)  # never reads
asyncio.run(main())
"""


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def end_to_end_part(seconds: float, rounds: int) -> int:
    if not shutil.which("wrk") or not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        print("end to end: skipped (wrk and nginx are needed; scripts/install-tools.sh)")
        return 0
    procs: list[subprocess.Popen[bytes]] = []
    runs: dict[str, list[float]] = {"no tap": [], "stuck tap, filling": [],
                                    "stuck tap, stalled": []}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        up, inbound, outbound, tap, admin = (free_port() for _ in range(5))
        try:
            procs.append(start_nginx(tmp, up))
            proxy = subprocess.Popen(
                [sys.executable, "-m", "meshtui", "proxy", f"--inbound=127.0.0.1:{inbound}",
                 f"--outbound=127.0.0.1:{outbound}", f"--app=127.0.0.1:{up}",
                 f"--tap=127.0.0.1:{tap}", f"--admin=127.0.0.1:{admin}", "--pod=web-0",
                 "--namespace=emojivoto", "--deployment=web"],
                stderr=subprocess.PIPE)
            procs.append(proxy)
            if not wait_port(up) or not wait_port(inbound) or not wait_port(tap):
                err = proxy.stderr.read() if proxy.poll() is not None and proxy.stderr else b""
                why = err.decode(errors="replace").strip()[-200:] or "no listener"
                print(f"end to end: skipped (the proxy did not start: {why})")
                return 0
            wrk(inbound, 1)  # warm up
            def run(name: str) -> None:
                runs[name].append(wrk(inbound, seconds, proxy.pid))
                cpu[name].append(CPU_US.pop())

            for _ in range(rounds):
                run("no tap")
                client = subprocess.Popen([sys.executable, "-c", STUCK_CLIENT,
                                           f"127.0.0.1:{tap}"], stdout=subprocess.PIPE)
                procs.append(client)
                assert client.stdout is not None
                client.stdout.readline()  # subscribed
                run("stuck tap, filling")
                run("stuck tap, stalled")
                client.terminate()
                client.wait()
            dropped = dropped_total(admin)
        finally:
            stop(procs)
    # Medians: on a shared machine one disturbed run should not decide the figure.
    base = statistics.median(runs["no tap"])
    print(f"end to end: wrk -t1 -c32, {rounds} rounds of {seconds:g}s runs, nginx upstream "
          "(medians)")
    for name, xs in runs.items():
        mid = statistics.median(xs)
        print(f"  {name:20s} {mid:8.0f} req/s  ratio {mid / base:5.3f}   runs: "
              + ", ".join(f"{x:.0f}" for x in xs))
    cpu_base = statistics.median(cpu["no tap"])
    for name, xs in cpu.items():
        mid = statistics.median(xs)
        print(f"  {name:20s} proxy CPU {mid:6.1f} µs/request (x{mid / cpu_base:5.3f})   runs: "
              + ", ".join(f"{x:.1f}" for x in xs))
    print("  ('filling' is the run during which the stream's transport windows still took "
          "batches)")
    print(f"  tap events dropped and counted by the proxy: {dropped}")
    ok = True
    for name in ("stuck tap, filling", "stuck tap, stalled"):
        ratio = statistics.median(runs[name]) / base
        ok = ok and ratio >= 0.9
        print(f"  {'ok  ' if ratio >= 0.9 else 'MISS'} {name}: ratio {ratio:.3f} "
              "(target >= 0.90)")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    recorder_part(args.requests)
    return end_to_end_part(args.seconds, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
