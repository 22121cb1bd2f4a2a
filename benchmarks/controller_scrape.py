"""The controller's scrape-and-aggregate tick against 200 proxies (target: p99 ≤ 100 ms).

The fake proxies (20 outbound routes and one inbound each, a success and a
failure series per route with warmed-up latency histograms, TCP series; a few
requests a second per route) run in a separate process serving one port each.
This process runs the controller's real scraper: a tick scrapes its proxies
concurrently over gRPC, converts each answer and folds it into the pod's windows.
By default proxies are spread over 10 slices a second as the controller runs
them (each proxy still scraped every second); ``--slices 1`` measures one burst
of all 200 at once.

Run: .venv/bin/python benchmarks/controller_scrape.py [--proxies 200] [--routes 20]
         [--seconds 40] [--slices 10 | --slices 1 for one burst of all proxies]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controller_fakes import app_addr, pod_names  # noqa: E402

from meshtui.controller.scraper import Scraper  # noqa: E402
from meshtui.controller.store import MeshStore  # noqa: E402
from meshtui.model.inventory import Inventory  # noqa: E402
from meshtui.runtime import tune_gc  # noqa: E402


def inventory(ports: list[int]) -> Inventory:
    pods = []
    for i, port in enumerate(ports):
        ns, dep, pod = pod_names(i)
        pods.append({"name": pod, "namespace": ns, "deployment": dep, "address": app_addr(i),
                     "proxy": f"127.0.0.1:{port}"})
    return Inventory.from_data({"pods": pods})


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def run(args: argparse.Namespace) -> int:
    fakes = subprocess.Popen(
        [sys.executable, str(HERE / "controller_fakes.py"), "metrics", "--proxies",
         str(args.proxies), "--routes", str(args.routes), "--rps", str(args.rps)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert fakes.stdout is not None
        ports = json.loads(fakes.stdout.readline())["ports"]
        store = MeshStore(inventory(ports))
        scraper = Scraper(store, interval_s=1.0, timeout_s=0.8, slices=args.slices)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        folds: list[float] = []
        cpus: list[float] = []
        rolls: list[float] = []
        step = 1.0 / args.slices
        warm = 3 * args.slices  # the first rounds connect channels and take baselines
        next_at = loop.time()
        pending: set[asyncio.Task[None]] = set()

        async def one(n: int) -> None:
            cpu0 = time.process_time()
            took = await scraper.tick(None if args.slices == 1 else n % args.slices)
            cpu = time.process_time() - cpu0
            fold = scraper.fold_s
            rolled = await scraper.roll_up() if args.slices == 1 else 0.0
            if n >= warm:
                times.append(took)
                folds.append(fold)
                cpus.append(cpu)
                rolls.append(rolled)

        for n in range(args.seconds * args.slices):
            task = asyncio.create_task(one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += step
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        await asyncio.gather(*pending)
        ok = sum(1 for st in store.proxied() if store.reachable(st))
        groups = sum(len(st.groups) for st in store.proxied())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        await scraper.close()
    finally:
        if fakes.stdin:
            fakes.stdin.close()
        fakes.wait(timeout=20)
    what = ("all proxies at once (burst)" if args.slices == 1
            else f"one slice of {args.slices} per second, ~{args.proxies // args.slices} proxies")
    print(f"scrape-and-aggregate tick, {what}: {args.proxies} proxies x {args.routes} routes "
          f"({args.rps:g} req/s per route), {len(times)} ticks over {args.seconds} s")
    print(f"  p50 {statistics.median(times) * 1000:.1f} ms   p99 {pct(times, 0.99) * 1000:.1f} ms"
          f"   max {max(times) * 1000:.1f} ms   (target p99 <= 100 ms)")
    print(f"  of which converting and folding answers into windows: p50 "
          f"{statistics.median(folds) * 1000:.1f} ms; controller CPU per tick (gRPC included): "
          f"p50 {statistics.median(cpus) * 1000:.1f} ms")
    if args.slices == 1:
        print(f"  roll-up into coarser blocks after each tick (off the tick, in slices): "
              f"p50 {statistics.median(rolls) * 1000:.1f} ms   "
              f"p99 {pct(rolls, 0.99) * 1000:.1f} ms")
    print(f"  proxies reachable {ok}/{args.proxies}; route groups held {groups}; "
          f"controller max RSS {rss:.0f} MiB")
    return 0 if pct(times, 0.99) <= 0.100 and ok == args.proxies else 1


def main() -> int:
    tune_gc()  # as `meshtui controller` runs
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxies", type=int, default=200)
    ap.add_argument("--routes", type=int, default=20)
    ap.add_argument("--rps", type=float, default=5.0)
    ap.add_argument("--seconds", type=int, default=40)
    ap.add_argument("--slices", type=int, default=10,
                    help="phases per second, as the controller runs (1: all at once)")
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
