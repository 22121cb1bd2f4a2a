"""Stat summaries from the controller with 200 proxies' history (target: p99 ≤ 50 ms).

Builds the controller's store for 200 pods (20 outbound routes each, as in
``controller_scrape.py``) and fills it with 15 minutes of history, folded in
exactly as scrapes are (older steps 10 s apart, the last 30 s every second),
then serves the real Stats service on loopback and times ``Summary`` calls from
a gRPC client: per query kind, p50 and p99 of the round trip, and of the
controller's own share (computing the answer).

Run: .venv/bin/python benchmarks/controller_summary.py [--proxies 200] [--runs 60]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import grpc  # noqa: E402
from controller_fakes import FakeMetrics, app_addr, pod_names  # noqa: E402

from meshtui.controller import stats  # noqa: E402
from meshtui.controller.scraper import to_snapshot  # noqa: E402
from meshtui.controller.service import StatsService  # noqa: E402
from meshtui.controller.store import MeshStore  # noqa: E402
from meshtui.model.inventory import Inventory  # noqa: E402
from meshtui.v1 import common_pb2, controller_pb2, controller_pb2_grpc  # noqa: E402

NS, DEPLOY, POD = common_pb2.NAMESPACE, common_pb2.DEPLOYMENT, common_pb2.POD


def sel(t: int, ns: str = "", name: str = "") -> common_pb2.ResourceSelector:
    return common_pb2.ResourceSelector(type=t, namespace=ns, name=name)


QUERIES = {
    "stat deploy -A -t 1m": controller_pb2.StatRequest(selector=sel(DEPLOY), window_s=60),
    "stat po -A -t 1m": controller_pb2.StatRequest(selector=sel(POD), window_s=60),
    "stat deploy -A -t 15m": controller_pb2.StatRequest(selector=sel(DEPLOY), window_s=900),
    "stat ns -t 15m": controller_pb2.StatRequest(selector=sel(NS), window_s=900),
    "stat deploy -n ns0 --to deploy/d1 (ns1) -t 1m": controller_pb2.StatRequest(
        selector=sel(DEPLOY, "ns0"), to=sel(DEPLOY, "ns1", "d1"), window_s=60),
    "stat deploy -A --from deploy/d0 (ns0) -t 1m": controller_pb2.StatRequest(
        selector=sel(DEPLOY), window_s=60, **{"from": sel(DEPLOY, "ns0", "d0")}),
}


def fill(store: MeshStore, n: int, now: float) -> int:
    """15 minutes of history: 10 s steps, then 1 s steps for the last 30 s."""
    rng = random.Random(7)
    fakes = [FakeMetrics(i, n, 20, 5.0, rng) for i in range(n)]
    states = [store.pods[(pod_names(i)[0], pod_names(i)[2])] for i in range(n)]
    times = [now - 900 + 10 * k for k in range(87)] + [now - 29 + k for k in range(30)]
    for k, t in enumerate(times):
        dt = (times[k] - times[k - 1]) if k else 10.0
        for f, st in zip(fakes, states, strict=True):
            f.last = time.monotonic() - dt  # advance as if dt seconds had passed
            f.advance()
            snap = to_snapshot(f.msg, st, store, t)
            assert st.windows is not None
            st.windows.observe(snap)
            st.run_id = f.msg.proxy.run_id
            st.last_ok = time.monotonic()
    for st in states:
        assert st.windows is not None
        st.windows.roll_up()
    return len(times)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def run(args: argparse.Namespace) -> int:
    pods = [{"name": pod_names(i)[2], "namespace": pod_names(i)[0],
             "deployment": pod_names(i)[1], "address": app_addr(i),
             "proxy": f"127.0.0.1:{40000 + i}"} for i in range(args.proxies)]
    store = MeshStore(Inventory.from_data({"pods": pods}))
    t0 = time.perf_counter()
    now = time.time()
    steps = fill(store, args.proxies, now)
    store.clock = lambda: now  # queries ask about the moment the history ends
    # No scraper keeps the replayed proxies fresh: they count as answering throughout
    # (else a fill and collection longer than stale_after_s leave every row empty).
    store.stale_after_s = math.inf
    gc.collect()  # the fill's garbage, which a running controller sheds a little at a time
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"history: {args.proxies} pods, {steps} steps over 15 min, filled in "
          f"{time.perf_counter() - t0:.1f} s; max RSS {rss:.0f} MiB")
    server = grpc.aio.server()
    controller_pb2_grpc.add_StatsServicer_to_server(StatsService(store), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    worst = 0.0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = controller_pb2_grpc.StatsStub(ch)
        await stub.Summary(QUERIES["stat ns -t 15m"], timeout=5)  # connects the channel
        print(f"{'query':48} {'rows':>5} {'p50 ms':>8} {'p99 ms':>8}  (compute p50/p99 ms)")
        for name, req in QUERIES.items():
            rtt, own = [], []
            rows = 0
            for _ in range(args.runs):
                # Queries ask about "now"; keep the history's clock there.
                a = time.perf_counter()
                resp = await stub.Summary(req, timeout=5)
                rtt.append(time.perf_counter() - a)
                b = time.perf_counter()
                stats.summary(req, store)
                own.append(time.perf_counter() - b)
                rows = len(resp.rows)
                assert any(r.has_traffic for r in resp.rows), name
            worst = max(worst, pct(rtt, 0.99))
            print(f"{name:48} {rows:>5} {statistics.median(rtt) * 1000:>8.1f} "
                  f"{pct(rtt, 0.99) * 1000:>8.1f}  ({statistics.median(own) * 1000:.1f} / "
                  f"{pct(own, 0.99) * 1000:.1f})")
    await server.stop(None)
    print(f"worst p99 round trip {worst * 1000:.1f} ms (target <= 50 ms)")
    return 0 if worst <= 0.050 else 1


def main() -> int:
    from meshtui.runtime import tune_gc

    tune_gc()  # as `meshtui controller` runs
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxies", type=int, default=200)
    ap.add_argument("--runs", type=int, default=60)
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
