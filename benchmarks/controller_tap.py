"""Tap fan-in through a real controller: 20 proxies flooding, one client (target ≥ 50,000 events/s).

Three processes, as in production: 20 fake proxies in one process, each producing
tap events at ``--rate`` per second into a bounded queue (what its subscriber
cannot take in time is dropped and reported, as a proxy does); ``meshtui
controller`` with those 20 pods in its inventory; and this client, tapping the
deployment with no rps limit. After ``--seconds`` the proxies stop, flush and
report how many events they produced; the client checks that every one was
either delivered or counted as lost (SourceDrops), and prints the rate.

Run: .venv/bin/python benchmarks/controller_tap.py [--proxies 20] [--rate 20000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from meshtui.v1 import common_pb2, controller_pb2, controller_pb2_grpc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controller_fakes import stop  # noqa: E402

MESHTUI = str(Path(sys.executable).parent / "meshtui")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace, tmp: Path) -> int:
    report = tmp / "produced.json"
    fakes = subprocess.Popen(
        [sys.executable, str(HERE / "controller_fakes.py"), "tap", "--proxies", str(args.proxies),
         "--rate", str(args.rate), "--seconds", str(args.seconds), "--batch", str(args.batch),
         "--report", str(report)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ctl = None
    try:
        assert fakes.stdout is not None and fakes.stdin is not None
        ports = json.loads(fakes.stdout.readline())["ports"]
        inv = tmp / "inventory.json"
        inv.write_text(json.dumps({"pods": [
            {"name": f"pod-{i}", "namespace": "bench", "deployment": "flood",
             "address": f"127.0.0.1:{20000 + i}", "proxy": f"127.0.0.1:{p}"}
            for i, p in enumerate(ports)]}))
        listen = f"127.0.0.1:{free_port()}"
        ctl = subprocess.Popen([MESHTUI, "controller", "--inventory", str(inv), "--listen", listen],
                               stdin=subprocess.DEVNULL)
        async with grpc.aio.insecure_channel(
                listen, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
            await asyncio.wait_for(ch.channel_ready(), 10)
            stub = controller_pb2_grpc.ResourceTapStub(ch)
            call = stub.Tap(controller_pb2.TapByResourceRequest(
                target=common_pb2.ResourceSelector(type=common_pb2.DEPLOYMENT, namespace="bench",
                                                   name="flood"), max_rps=0))
            delivered = 0
            dropped = 0
            batches = 0
            first = last = 0.0

            async def read() -> None:
                nonlocal delivered, dropped, batches, first, last
                async for b in call:
                    n = len(b.events)
                    if n:
                        last = time.perf_counter()
                        first = first or last
                    delivered += n
                    dropped += sum(d.dropped for d in b.drops)
                    batches += 1

            reader = asyncio.create_task(read())
            await asyncio.sleep(2.0)  # the controller opens its 20 upstream streams
            fakes.stdin.write("go\n")
            fakes.stdin.flush()
            t0 = time.perf_counter()
            while not report.exists():
                await asyncio.sleep(0.2)
                if time.perf_counter() - t0 > args.seconds + 60:
                    raise SystemExit("the fake proxies never finished")
            produced = json.loads(report.read_text())["produced"]
            quiet_since = time.perf_counter()
            seen = delivered + dropped
            while time.perf_counter() - quiet_since < 2.0 and delivered + dropped < produced:
                await asyncio.sleep(0.1)
                if delivered + dropped != seen:
                    seen, quiet_since = delivered + dropped, time.perf_counter()
            call.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        stop(fakes, ctl)
    span = max(last - first, 1e-9)
    rate = delivered / span
    print(f"tap fan-in: {args.proxies} proxies producing {args.rate:,.0f} events/s each "
          f"({args.proxies * args.rate:,.0f}/s offered) for {args.seconds:g} s, batches of "
          f"<= {args.batch}")
    print(f"  delivered {delivered:,} events in {batches:,} batches over {span:.1f} s: "
          f"{rate:,.0f} events/s end to end (target >= 50,000)")
    print(f"  produced {produced:,} = delivered {delivered:,} + reported lost {dropped:,}"
          f"{'' if delivered + dropped == produced else '   MISMATCH'}"
          f" ({produced - delivered - dropped:+,})")
    ok = rate >= 50_000 and delivered + dropped == produced
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxies", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20_000, help="events a second per proxy")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=300, help="events per proxy batch at most")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
