"""HTTP/2 load for ``proxy_overhead.py``: gRPC unary calls at a fixed rate from
grpcio's client, and h2load runs (gRPC-shaped POSTs to a grpcio server, GETs to
nghttpd).

The fixed-rate client times each call from send to status on one channel (one
HTTP/2 connection, calls multiplexed), open loop: a call is sent when it is due,
whatever the earlier ones are doing.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import grpc
from grpc_echo import METHOD

#: One gRPC message of 5 bytes ("hello"), framed: not compressed, then the length.
GRPC_BODY = b"\x00" + (5).to_bytes(4, "big") + b"hello"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


async def when_due(due: float) -> tuple[float, bool]:
    """Sleeps until ``due`` (perf_counter seconds): (the time it woke, whether it was
    over 1 ms late — the generator's own lag)."""
    now = time.perf_counter()
    if due > now:
        await asyncio.sleep(due - now)
    start = time.perf_counter()
    return start, start - due > 0.001


async def grpc_fixed_rate(port: int, rate: float, seconds: float) -> tuple[list[float], int]:
    """Latencies (seconds) of ``rate*seconds`` unary calls sent on a fixed schedule,
    and how many were sent over 1 ms late (the generator's own lag)."""
    opts = [("grpc.enable_http_proxy", 0)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) as ch:
        call = ch.unary_unary(METHOD)
        await call(b"warm", timeout=5)
        total = int(rate * seconds)
        lat: list[float] = []
        late = 0

        async def worker(k: int, t0: float) -> None:
            nonlocal late
            for i in range(k, total, workers):
                start, was_late = await when_due(t0 + i / rate)
                late += was_late
                await call(b"hello", timeout=10)
                lat.append(time.perf_counter() - start)

        # Calls overlap on the channel: each worker has workers/rate seconds for its call
        # before the next one is due.
        workers = 50
        t0 = time.perf_counter() + 0.05
        await asyncio.gather(*(worker(k, t0) for k in range(workers)))
        return lat, late


def h2load_fixed_rate(url: str, rate: float, seconds: float, body: Path, log: Path
                      ) -> tuple[list[float], None]:
    """Latencies (seconds) of gRPC unary calls from h2load at ``rate`` calls/s (10
    connections, one call at a time on each), from its per-request log. (None: h2load
    does not say how late it sent.)"""
    args = ["h2load", "-c", "10", "-m", "1", "--rps", f"{rate / 10:g}", "-D", f"{seconds:g}",
            "--log-file", str(log), "-d", str(body),
            *(x for h in GRPC_HEADERS for x in ("-H", h)), url]
    subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    lat = []
    for line in log.read_text().splitlines():
        _start, status, took_us = line.split("\t")[:3]
        if status != "200":
            raise RuntimeError(f"h2load: status {status} from {url}")
        lat.append(int(took_us) / 1e6)
    return lat, None


def h2load(url: str, seconds: float, clients: int, streams: int,
           grpc_body: Path | None = None) -> tuple[float, int]:
    """(requests/s, requests done) of one h2load run of ``seconds``; ``grpc_body``:
    POST this file as a gRPC unary call (its trailers end each stream)."""
    args = ["h2load", "-c", str(clients), "-m", str(streams), "-D", f"{seconds:g}", url]
    if grpc_body is not None:
        args[1:1] = ["-d", str(grpc_body), *(x for h in GRPC_HEADERS for x in ("-H", h))]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not m or not done:
        raise RuntimeError(f"unreadable h2load output: {out.strip()[-300:]}")
    if done.group(1) != done.group(2):
        raise RuntimeError(f"h2load: {done.group(1)} done but {done.group(2)} succeeded on {url}")
    return float(m.group(1)), int(done.group(2))
