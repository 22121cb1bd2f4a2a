"""What capturing bodies (``tap --capture-body``) costs the proxy.

wrk (``-t1 -c32``) through ``meshtui proxy``'s inbound listener to an nginx
upstream (one worker), two kinds of request: GET of a 64 KiB response, and POST
of a 64 KiB body answered with 3 bytes. For each, in interleaved rounds:

* ``no tap``: nobody subscribed;
* ``tap``: a gRPC tap stream (``Tap.Observe``, unlimited rate) read as fast as it
  comes, not asking for bodies;
* ``tap + bodies``: the same stream asking for 65,536 bytes of every body.

Prints requests/s and the proxy's CPU per request (medians), the ratio of each
to ``no tap``, and the bodies the tap client received. Target: ``tap + bodies``
at least 0.80 of ``no tap``.

A tap stream is lossy: its events are built within the hub's CPU budget, and a
request arriving while its queue is full is dropped whole, before any body is
copied. So end to end, only some requests have their bodies copied. The first
part therefore prices the copy itself with every request captured: the recorder
alone (``Telemetry`` and ``TapHub`` as the data path drives them, 64 KiB each way
in 16 KiB reads, the queue emptied unread), µs per request with nobody tapping,
with a tap not asking for bodies, and with one asking for 65,536 bytes; the
difference, added to the tapped proxy's CPU per request measured end to end and
set against the untapped one's, bounds what capturing every request's bodies
costs a CPU-bound proxy. With ``--compare-with DIR`` (a source tree without
body capture, e.g. the main branch's), ``no tap`` runs of that tree's proxy are
interleaved too: nobody asking for bodies should cost nothing, so the ratio of
this tree's ``no tap`` to that one's should be 1 within the noise.

Run: ``.venv/bin/python benchmarks/tap_bodies.py [--seconds 4] [--rounds 3]
[--compare-with DIR]`` (needs nginx and wrk: ``scripts/install-tools.sh``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proxy_overhead import cpu_seconds, free_port, nginx, wait_listening
from tap_slow_subscriber import HEADERS, stop

from meshtui.proxy.tap_hub import TapHub
from meshtui.proxy.telemetry import Direction, Identity, Telemetry

SIZE = 64 * 1024

READER = """
import asyncio, signal, sys, grpc
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc
async def main():
    events = bodies = body_bytes = 0
    async with grpc.aio.insecure_channel(sys.argv[1]) as ch:
        call = proxy_pb2_grpc.TapStub(ch).Observe(
            proxy_pb2.ObserveRequest(capture_body=int(sys.argv[2])))
        await call.initial_metadata()
        print("subscribed", flush=True)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, call.cancel)
        try:
            async for batch in call:
                events += len(batch.events)
                for e in batch.events:
                    if e.response_end.HasField("response_body"):
                        bodies += 1
                        body_bytes += (len(e.response_end.response_body.data)
                                       + len(e.response_end.request_body.data))
        except asyncio.CancelledError:
            pass
    print(events, bodies, body_bytes, flush=True)
asyncio.run(main())
"""


def recorder_us(tap: bool, capture: int, n: int) -> float:
    """µs per request of the recorder with 64 KiB bodies each way, every request taken."""
    hub = TapHub(time.monotonic, queue_capacity=1 << 20, cpu_share=0)
    tel = Telemetry(Identity("emojivoto", "web", "web-0"), hub=hub)
    sub = hub.subscribe(capture_body=capture) if tap else None
    piece = os.urandom(SIZE // 4)
    t0 = time.perf_counter()
    for i in range(n):
        obs = tel.request(Direction.INBOUND, ("127.0.0.1", 40000), ("127.0.0.1", 8080), i >> 4,
                          "POST", "http", "web-svc:80", "/api/vote", HEADERS)
        for _ in range(4):  # as exchange.request_body does for each read
            if obs.cap:
                obs.capture_request(piece)
        obs.response_start(200, HEADERS)
        for _ in range(4):
            if obs.cap:
                obs.capture_response(piece)
        obs.response_end(SIZE)
        if sub is not None and i % 64 == 63:  # (a body queue holds 128 requests)
            sub.queue.clear()
    return (time.perf_counter() - t0) / n * 1e6


def recorder_part(n: int) -> dict[str, float]:
    modes = {"nobody tapping": (False, 0), "tap, no bodies": (True, 0),
             "tap + 64 KiB bodies": (True, SIZE)}
    runs: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(5):
        for m, (tap, cap) in modes.items():
            runs[m].append(recorder_us(tap, cap, n))
    out = {m: statistics.median(xs) for m, xs in runs.items()}
    print(f"recorder alone, {n} requests x 5 (medians), 64 KiB bodies each way:")
    for m, us in out.items():
        print(f"  {m:20s} {us:6.2f} µs/request   runs: " + ", ".join(f"{x:.2f}" for x in runs[m]))
    return out


def wrk(url: str, seconds: float, script: Path | None, pid: int) -> tuple[float, float]:
    """(requests/s, proxy CPU µs per request) of one wrk run."""
    before = cpu_seconds([pid])
    cmd = ["wrk", "-t1", "-c32", f"-d{seconds:g}s", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n or re.search(r"Non-2xx or 3xx responses", out):
        raise RuntimeError(f"wrk failed: {out.strip()[:300]}")
    return float(m.group(1)), (cpu_seconds([pid]) - before) / int(n.group(1)) * 1e6


def start_proxy(inbound: int, app: int, tap: int, source: str | None = None
                ) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=source) if source else None
    return subprocess.Popen(
        [sys.executable, "-m", "meshtui", "proxy", f"--inbound=127.0.0.1:{inbound}",
         "--outbound=127.0.0.1:0", f"--app=127.0.0.1:{app}", f"--tap=127.0.0.1:{tap}",
         "--admin=off", "--pod=web-0", "--namespace=emojivoto", "--deployment=web"],
        stderr=subprocess.DEVNULL, env=env, cwd=source or None)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare-with", metavar="DIR")
    ap.add_argument("--requests", type=int, default=20_000, help="for the recorder part")
    args = ap.parse_args()
    rec = recorder_part(args.requests)
    copy_us = rec["tap + 64 KiB bodies"] - rec["tap, no bodies"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "www").mkdir()
        (tmp / "www" / "big").write_bytes(os.urandom(SIZE))
        for path in (tmp, tmp / "www", tmp / "www" / "big"):  # nginx's worker is nobody
            path.chmod(0o755)
        post = tmp / "post.lua"
        post.write_text(f'wrk.method = "POST"\nwrk.body = string.rep("x", {SIZE})\n'
                        'wrk.headers["Content-Type"] = "application/octet-stream"\n')
        up, inbound, tap, other_in, other_tap = (free_port() for _ in range(5))
        ngx = nginx(tmp, "up", f"""server {{ listen 127.0.0.1:{up};
            client_max_body_size 1m; client_body_buffer_size 128k;
            location = /big {{ root {tmp}/www; }}
            location = /post {{ return 200 "ok\\n"; }} }}""")
        procs = [ngx]
        try:
            proxy = start_proxy(inbound, up, tap)
            procs.append(proxy)
            other = None
            if args.compare_with:
                other = start_proxy(other_in, up, other_tap, args.compare_with)
                procs.append(other)
            for port in (up, inbound, tap) + ((other_in,) if other else ()):
                wait_listening(port)
            kinds = {"GET 64 KiB response": ("/big", None),
                     "POST 64 KiB body": ("/post", post)}
            modes = ["no tap", "tap", "tap + bodies"] + (["no tap, other tree"] if other else [])
            rps: dict[tuple[str, str], list[float]] = {}
            cpu: dict[tuple[str, str], list[float]] = {}
            got: dict[str, list[str]] = {}
            for kind, (path, script) in kinds.items():
                wrk(f"http://127.0.0.1:{inbound}{path}", 1, script, proxy.pid)  # warm up
                for _ in range(args.rounds):
                    for mode in modes:
                        reader = None
                        if mode.startswith("tap"):
                            reader = subprocess.Popen(
                                [sys.executable, "-c", READER, f"127.0.0.1:{tap}",
                                 str(SIZE if mode == "tap + bodies" else 0)],
                                stdout=subprocess.PIPE, text=True)
                            assert reader.stdout is not None
                            reader.stdout.readline()  # subscribed
                        target, pid = (other_in, other.pid) if mode.endswith("tree") and other \
                            else (inbound, proxy.pid)
                        r, c = wrk(f"http://127.0.0.1:{target}{path}", args.seconds, script, pid)
                        rps.setdefault((kind, mode), []).append(r)
                        cpu.setdefault((kind, mode), []).append(c)
                        if reader is not None:
                            reader.send_signal(signal.SIGTERM)
                            out, _ = reader.communicate(timeout=10)
                            got.setdefault(f"{kind}, {mode}", []).append(out.strip())
        finally:
            for p in reversed(procs):
                stop([p])
    ok = True
    print(f"wrk -t1 -c32, {args.rounds} rounds of {args.seconds:g}s, nginx upstream (medians)")
    for kind in kinds:
        base_r = statistics.median(rps[(kind, "no tap")])
        base_c = statistics.median(cpu[(kind, "no tap")])
        print(f"{kind}:")
        for mode in modes:
            r = statistics.median(rps[(kind, mode)])
            c = statistics.median(cpu[(kind, mode)])
            print(f"  {mode:20s} {r:8.0f} req/s  x{r / base_r:5.3f}   proxy CPU {c:6.1f} "
                  f"µs/request  x{c / base_c:5.3f}   runs: "
                  + ", ".join(f"{x:.0f}" for x in rps[(kind, mode)]))
        for mode in ("tap", "tap + bodies"):
            print(f"    {mode} client got (events, bodies, body bytes) per run: "
                  + "; ".join(got[f"{kind}, {mode}"]))
        ratio = statistics.median(rps[(kind, "tap + bodies")]) / base_r
        ok = ok and ratio >= 0.8
        print(f"  {'ok  ' if ratio >= 0.8 else 'MISS'} tap + bodies: x{ratio:.3f} of no tap "
              "(target >= 0.80)")
        tapped_c = statistics.median(cpu[(kind, "tap")])
        every = base_c / (tapped_c + copy_us)
        ok = ok and every >= 0.8
        print(f"  {'ok  ' if every >= 0.8 else 'MISS'} every request tapped with its bodies "
              f"copied ({tapped_c:.1f} + {copy_us:.1f} µs of CPU a request against "
              f"{base_c:.1f} untapped): x{every:.3f} of untapped throughput when CPU-bound "
              "(target >= 0.80)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
