"""Many fake proxies in one process, for the controller benchmarks.

``metrics``: N proxies, each a grpc.aio server on its own loopback port answering
``Metrics.Scrape`` with R outbound routes (success and failure series with
latency histograms, TCP series) and one inbound route; every scrape finds the
counters advanced as if a few requests a second went down every route.

``tap``: N proxies answering ``Tap.Observe``, each producing events at a fixed
rate into a bounded queue, as a proxy does: what the subscriber cannot take in
time is dropped and reported in the next batch. After ``--seconds`` they stop
producing, flush, and write how many events each produced to ``--report``.

Both print one JSON line with their ports on stdout once serving, and run until
stdin closes. Meant to run in a process of its own, so that they do not steal
the controller's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
import uuid

import grpc

from meshtui.model.histogram import bucket_index
from meshtui.v1 import common_pb2, proxy_pb2, proxy_pb2_grpc


def pod_names(i: int) -> tuple[str, str, str]:
    """namespace, deployment, pod of fake proxy ``i`` (5 pods a deployment, 4 namespaces)."""
    d = i // 5
    return f"ns{d % 4}", f"d{d}", f"pod-{i}"


def stop(fakes: subprocess.Popen, controller: subprocess.Popen | None) -> None:
    """Stops a benchmark's controller, then its fake proxies (they leave when stdin closes)."""
    if controller is not None:
        controller.terminate()
        controller.wait(timeout=15)
    if fakes.stdin:
        fakes.stdin.close()
    fakes.wait(timeout=20)


def app_addr(i: int) -> str:
    return f"127.0.0.1:{20000 + i}"


class FakeMetrics(proxy_pb2_grpc.MetricsServicer):
    def __init__(self, i: int, n: int, routes: int, rps: float, rng: random.Random) -> None:
        ns, dep, pod = pod_names(i)
        self.rps = rps
        self.rng = rng
        self.last = time.monotonic()
        msg = proxy_pb2.ScrapeResponse()
        msg.proxy.workload.namespace, msg.proxy.workload.deployment = ns, dep
        msg.proxy.workload.pod = pod
        msg.proxy.run_id = uuid.uuid4().hex
        msg.proxy.start_time_ms = int((time.time() - 3600) * 1000)
        self.msg = msg
        # (request series, ok series, failed series, tcp series, bucket indexes)
        self.routes: list[tuple] = []
        peers = [(i, common_pb2.INBOUND)] + [
            ((i + 1 + 7 * r) % n, common_pb2.OUTBOUND) for r in range(routes)]
        for r, (j, direction) in enumerate(peers):
            pns, pdep, ppod = pod_names(j)
            # Half the outbound routes name their peer only by address.
            named = direction == common_pb2.INBOUND or r % 2 == 0
            dst = common_pb2.Workload(namespace=pns, deployment=pdep, pod=ppod) if named else None
            kw = {"direction": direction, "dst_addr": app_addr(j)}
            req = msg.requests.add(authority=f"{pdep}.{pns}:8080", **kw)
            ok = msg.responses.add(authority=f"{pdep}.{pns}:8080", status_code=200,
                                   success=True, **kw)
            bad = msg.responses.add(authority=f"{pdep}.{pns}:8080", status_code=500,
                                    success=False, **kw)
            tcp = msg.tcp.add(**kw)
            if dst is not None:
                for s in (req, ok, bad, tcp):
                    s.dst.CopyFrom(dst)
            # A warmed-up cumulative histogram: ~40 buckets around a median.
            median_us = rng.choice([800, 2_000, 5_000, 20_000])
            lo = bucket_index(median_us / 2)
            idx = list(range(lo, lo + 40))
            for h in (ok.latency, bad.latency):
                h.indexes.extend(idx)
                h.counts.extend([rng.randint(1, 50) for _ in idx])
                h.count = sum(h.counts)
                h.sum_us = h.count * median_us
            self.routes.append((req, ok, bad, tcp, len(idx)))

    def advance(self) -> None:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        rng = self.rng
        for req, ok, bad, tcp, nb in self.routes:
            n = max(1, int(self.rps * dt + rng.random()))
            fails = 1 if rng.random() < 0.05 else 0
            req.count += n
            for series, k in ((ok, n - fails), (bad, fails)):
                if k <= 0:
                    continue
                series.count += k
                h = series.latency
                for _ in range(min(k, 5)):
                    b = min(int(abs(rng.gauss(0, nb / 4))), nb - 1)
                    h.counts[b] += 1
                h.counts[0] += k - min(k, 5)
                h.count += k
                h.sum_us += k * 1000.0
            tcp.open_total += 1
            tcp.close_total += 1
            tcp.open_connections = 2
            tcp.read_bytes_total += 300 * n
            tcp.write_bytes_total += 1200 * n

    async def Scrape(self, request: proxy_pb2.ScrapeRequest,
                     context: grpc.aio.ServicerContext) -> proxy_pb2.ScrapeResponse:
        self.advance()
        self.msg.timestamp_ms = int(time.time() * 1000)
        return self.msg


class FakeTap(proxy_pb2_grpc.TapServicer, proxy_pb2_grpc.MetricsServicer):
    """Produces ``rate`` events a second into a bounded queue; drops what does not fit."""

    def __init__(self, i: int, rate: float, batch: int, queue: int) -> None:
        self.rate, self.batch, self.queue_max = rate, batch, queue
        self.produced = 0
        self.pending = 0
        self.dropped = 0
        self.producing = True
        self.ready = asyncio.Event()
        ns, dep, pod = pod_names(i)
        self.identity = proxy_pb2.ScrapeResponse()
        self.identity.proxy.run_id = uuid.uuid4().hex
        w = self.identity.proxy.workload
        w.namespace, w.deployment, w.pod = ns, dep, pod
        ev = []
        for k in range(batch // 3):
            for kind in range(3):
                e = common_pb2.TapEvent(proxy_direction=common_pb2.INBOUND,
                                        timestamp_us=int(time.time() * 1e6))
                e.id.base, e.id.stream = i, k
                e.source.ip, e.source.port = "127.0.0.9", 40000 + k
                e.source.workload.namespace = "ns0"
                e.source.workload.deployment, e.source.workload.pod = "d0", "pod-0"
                e.destination.ip, e.destination.port = "127.0.0.1", 20000 + i
                w = e.destination.workload
                w.namespace, w.deployment, w.pod = ns, dep, pod
                if kind == 0:
                    e.request_init.method, e.request_init.path = "GET", f"/api/{k}"
                    e.request_init.authority = f"{dep}.{ns}:8080"
                elif kind == 1:
                    e.response_init.http_status = 200
                    e.response_init.since_request_init_us = 1200
                else:
                    e.response_end.since_request_init_us = 1500
                    e.response_end.response_bytes = 512
                ev.append(e)
        self.full = proxy_pb2.TapBatch(events=ev)
        self.sizes: dict[int, proxy_pb2.TapBatch] = {len(ev): self.full}

    async def Scrape(self, request: proxy_pb2.ScrapeRequest,
                     context: grpc.aio.ServicerContext) -> proxy_pb2.ScrapeResponse:
        return self.identity

    def _batch_of(self, n: int) -> proxy_pb2.TapBatch:
        b = self.sizes.get(n)
        if b is None:
            b = self.sizes[n] = proxy_pb2.TapBatch(events=self.full.events[:n])
        return b

    async def produce(self, seconds: float) -> None:
        t0 = time.monotonic()
        step = 0.005
        credit = 0.0
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(step)
            credit += self.rate * step
            n = int(credit)
            credit -= n
            self.produced += n
            room = self.queue_max - self.pending
            took = min(room, n)
            self.pending += took
            self.dropped += n - took
            self.ready.set()
        self.producing = False
        self.ready.set()

    async def Observe(self, request: proxy_pb2.ObserveRequest,
                      context: grpc.aio.ServicerContext):  # type: ignore[override]
        while self.producing or self.pending or self.dropped:
            if not self.pending and not self.dropped:
                self.ready.clear()
                await self.ready.wait()
                continue
            n = min(self.pending, len(self.full.events))
            self.pending -= n
            drops, self.dropped = self.dropped, 0
            if drops:
                b = proxy_pb2.TapBatch()
                b.CopyFrom(self._batch_of(n))
                b.dropped = drops
                yield b
            else:
                yield self._batch_of(n)
        # Flushed: keep the stream open until the subscriber leaves.
        await asyncio.Event().wait()


async def _serve(servicers: list, add) -> tuple[list[grpc.aio.Server], list[int]]:
    servers, ports = [], []
    for s in servicers:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        add(s, server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        servers.append(server)
    return servers, ports


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main_metrics(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    fakes = [FakeMetrics(i, args.proxies, args.routes, args.rps, rng) for i in range(args.proxies)]
    servers, ports = await _serve(fakes, proxy_pb2_grpc.add_MetricsServicer_to_server)
    print(json.dumps({"ports": ports}), flush=True)
    await _until_stdin_closes()
    for s in servers:
        await s.stop(None)


async def main_tap(args: argparse.Namespace) -> None:
    fakes = [FakeTap(i, args.rate, args.batch, args.queue) for i in range(args.proxies)]
    def add_both(s: FakeTap, server: grpc.aio.Server) -> None:
        proxy_pb2_grpc.add_TapServicer_to_server(s, server)
        proxy_pb2_grpc.add_MetricsServicer_to_server(s, server)

    servers, ports = await _serve(fakes, add_both)
    print(json.dumps({"ports": ports}), flush=True)
    go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if go.strip() == "go":
        await asyncio.gather(*(f.produce(args.seconds) for f in fakes))
        while any(f.pending or f.dropped for f in fakes):
            await asyncio.sleep(0.05)
        with open(args.report, "w") as fh:
            json.dump({"produced": sum(f.produced for f in fakes),
                       "per_source": [f.produced for f in fakes]}, fh)
    await _until_stdin_closes()
    for s in servers:
        await s.stop(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="kind", required=True)
    m = sub.add_parser("metrics")
    m.add_argument("--proxies", type=int, default=200)
    m.add_argument("--routes", type=int, default=20)
    m.add_argument("--rps", type=float, default=5.0, help="requests a second per route")
    t = sub.add_parser("tap")
    t.add_argument("--proxies", type=int, default=20)
    t.add_argument("--rate", type=float, default=20_000, help="events a second per proxy")
    t.add_argument("--batch", type=int, default=300, help="events per batch at most")
    t.add_argument("--queue", type=int, default=10_000, help="a proxy's tap queue, events")
    t.add_argument("--seconds", type=float, default=15.0)
    t.add_argument("--report", default="/dev/null")
    args = ap.parse_args()
    asyncio.run(main_metrics(args) if args.kind == "metrics" else main_tap(args))


if __name__ == "__main__":
    main()
