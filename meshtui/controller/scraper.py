"""Scraping every proxy's ``Metrics.Scrape`` once a second.

Every tick fires all scrapes at once, each with its own deadline, and folds
each answer into that pod's windows the moment it arrives: a proxy that hangs
costs at most its deadline and never delays another's freshness. Channels
reconnect quickly (backoff capped at one second) so that a restarted proxy is
read again on the next tick or the one after.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib

import grpc

from meshtui.controller.dial import Dialer
from meshtui.controller.store import MeshStore, PodKey, PodState
from meshtui.model.windows import FAILURE, SUCCESS, Series, Snapshot
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc

log = logging.getLogger("meshtui.controller")

_EMPTY = proxy_pb2.ScrapeRequest()


def to_snapshot(resp: proxy_pb2.ScrapeResponse, st: PodState, store: MeshStore,
                now: float) -> Snapshot:
    """A scrape as the windows take it: series keyed by their labels, grouped by
    destination (see :mod:`meshtui.controller.store`).

    Request series are not read: rates come from response series, as Linkerd's
    do, and every request ends in exactly one of them. Reading a histogram's
    buckets is the costly part of a scrape, so a response series whose count and
    histogram total have not moved since the last scrape of the same run is
    handed back as the very same object (which the windows skip), and a bucket
    list of the same length and ends as last time is reused as it was: within
    one run a histogram only ever gains buckets.
    """
    group_for = store.group_for
    groups = st.groups
    same_run = resp.proxy.run_id == st.run_id
    last = st.last_series if same_run else {}
    series: dict[tuple, Series] = {}
    for rs in resp.responses:
        d = rs.dst
        gk = (rs.direction, d.namespace, d.deployment, d.pod, rs.dst_addr)
        key = (1, rs.authority, rs.status_code, rs.success, *gk)
        h = rs.latency
        total = h.count
        c = rs.count
        prev = last.get(key)
        if prev is not None and prev.latency_count == total and prev.counters[
                SUCCESS if rs.success else FAILURE] == c:
            series[key] = prev
            continue
        g = groups.get(gk) or group_for(st, *gk)
        # Those over mutual TLS: all or none as tls says, or a mix (see proxy.proto).
        n_tls = c if rs.tls else min(rs.tls_count, c)
        counters = (0, c, 0, 0, 0, 0, 0, n_tls) if rs.success else (0, 0, c, 0, 0, 0, 0, n_tls)
        ci = h.indexes
        idx = prev.latency_indexes if prev is not None else None
        n = len(ci)
        if idx is None or len(idx) != n or (n and (idx[0] != ci[0] or idx[-1] != ci[-1])):
            idx = list(ci)
        series[key] = Series(g, counters, 0, idx, list(h.counts), h.sum_us, total)
    for t in resp.tcp:
        d = t.dst
        gk = (t.direction, d.namespace, d.deployment, d.pod, t.dst_addr)
        g = groups.get(gk) or group_for(st, *gk)
        series[(2, *gk)] = Series(
            g, (0, 0, 0, t.open_total, t.close_total, t.read_bytes_total, t.write_bytes_total, 0),
            t.open_connections)
    st.last_series = series
    ident = resp.proxy
    start = ident.start_time_ms / 1000.0 if ident.start_time_ms else None
    return Snapshot(ident.run_id, now, series, start)


class _Target:
    __slots__ = ("addr", "channel", "gen", "stub")

    def __init__(self, addr: str, dialer: Dialer) -> None:
        self.addr = addr
        self.channel = dialer.channel(addr)
        self.stub = proxy_pb2_grpc.MetricsStub(self.channel)
        # The controller's certificate the channel was made with (see DialTls).
        self.gen = dialer.tls.generation if dialer.tls is not None else 0


class Scraper:
    """Scrapes every proxy of the store's inventory once per interval.

    Proxies are spread over ``slices`` phases of the interval, as Prometheus
    spreads its targets: each proxy is still scraped every interval, but the
    event loop never has all of them to fold in at once, so a stat query or a
    tap batch waits for one slice at most. ``slices=1`` scrapes everything in
    one burst. Slices run on a fixed schedule and never wait for each other: a
    proxy that hangs holds up only its own next scrape (one in flight per proxy).

    Args:
        store: where answers go.
        interval_s: how often each proxy is scraped.
        timeout_s: each scrape's deadline (below the interval).
        slices: phases per interval.
        dialer: how proxies are reached (default: directly).
    """

    def __init__(self, store: MeshStore, interval_s: float = 1.0, timeout_s: float = 0.8,
                 slices: int = 10, dialer: Dialer | None = None) -> None:
        self.store = store
        self.dialer = dialer or Dialer()
        self.interval_s = interval_s
        self.timeout_s = min(timeout_s, interval_s * 0.9)
        self.slices = max(1, slices)
        self._targets: dict[PodKey, _Target] = {}
        self._down: set[PodKey] = set()  # pods whose proxy failed its last scrape (logged once)
        self._inflight: set[PodKey] = set()
        self._phase: dict[PodKey, int] = {}
        self._slice_tasks: set[asyncio.Task[float]] = set()
        self._closing: set[asyncio.Future[None]] = set()
        self.last_tick_s = 0.0  # how long the last tick (or slice) took, answers folded in
        self.ticks = 0
        self.last_roll_up_s = 0.0
        self.fold_s = 0.0  # of the last tick: converting answers and folding them in

    def _reconcile(self) -> list[tuple[PodState, _Target]]:
        out = []
        live: dict[PodKey, _Target] = {}
        tls = self.dialer.tls
        if tls is not None:
            tls.refresh()
        gen = tls.generation if tls is not None else 0
        for st in self.store.proxied():
            addr = str(st.pod.proxy)
            t = self._targets.get(st.key)
            # A renewed certificate: channels made with the old one are made again, so
            # that none reconnects with a certificate about to expire.
            if t is None or t.addr != addr or t.gen != gen:
                if t is not None:
                    self._closing.add(asyncio.ensure_future(t.channel.close(grace=None)))
                t = _Target(addr, self.dialer)
            live[st.key] = t
            out.append((st, t))
        for key, t in self._targets.items():
            if key not in live:
                self._closing.add(asyncio.ensure_future(t.channel.close(grace=None)))
        self._closing = {f for f in self._closing if not f.done()}
        self._targets = live
        self._down &= live.keys()
        if len(self._phase) > 2 * len(live) + 64:
            self._phase = {k: v for k, v in self._phase.items() if k in live}
        return out

    def phase(self, key: PodKey) -> int:
        """The slice a pod is scraped in: stable across restarts and inventory changes."""
        p = self._phase.get(key)
        if p is None:
            p = self._phase[key] = zlib.crc32(f"{key[0]}/{key[1]}".encode()) % self.slices
        return p

    async def _scrape(self, st: PodState, target: _Target) -> None:
        self._inflight.add(st.key)
        try:
            resp = await target.stub.Scrape(_EMPTY, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as e:
            st.last_error = f"{e.code().name}: {e.details() or ''}".strip()
            if st.key not in self._down:
                self._down.add(st.key)
                log.warning("proxy of %s/%s at %s failed a scrape: %s", st.pod.namespace,
                            st.pod.name, target.addr, st.last_error)
            return
        finally:
            self._inflight.discard(st.key)
        if st.windows is None or self.store.pods.get(st.key) is not st:
            return  # the inventory changed under us; the answer belongs to no one now
        now = time.time()
        ident = resp.proxy
        if st.run_id and ident.run_id != st.run_id:
            log.info("proxy of %s/%s restarted (run %s)", st.pod.namespace, st.pod.name,
                     ident.run_id)
        t0 = time.perf_counter()
        st.windows.observe(to_snapshot(resp, st, self.store, now))
        self.fold_s += time.perf_counter() - t0
        st.run_id, st.version, st.start_time_ms = ident.run_id, ident.version, ident.start_time_ms
        cert = resp.certificate
        st.certificate = ((cert.identity, cert.not_before_ms, cert.not_after_ms,
                           cert.refreshes, cert.refresh_errors)
                          if resp.HasField("certificate") else None)
        st.last_ok = time.monotonic()
        st.last_ok_wall = now
        st.last_error = ""
        if st.key in self._down:
            self._down.discard(st.key)
            log.info("proxy of %s/%s at %s answers again", st.pod.namespace, st.pod.name,
                     target.addr)

    async def tick(self, phase: int | None = None) -> float:
        """Scrapes every proxy (or those of one phase) concurrently and folds the
        answers in as they come; returns the seconds it took."""
        t0 = time.perf_counter()
        self.fold_s = 0.0
        pairs = [(st, t) for st, t in self._reconcile()
                 if st.key not in self._inflight and (phase is None or self.phase(st.key) == phase)]
        if pairs:
            await asyncio.gather(*(self._scrape(st, t) for st, t in pairs))
        self.ticks += 1
        self.last_tick_s = time.perf_counter() - t0
        if phase is not None:
            for st, _ in pairs:
                if st.windows is not None:
                    st.windows.roll_up()
        return self.last_tick_s

    async def roll_up(self, chunk: int = 20) -> float:
        """Folds the tick's steps into every pod's coarser blocks, a few pods at a
        time so that queries and taps get the loop in between; returns seconds.
        (Queries roll up what they read themselves, so this only moves work off
        the tick and the queries' paths.)"""
        t0 = time.perf_counter()
        for n, st in enumerate(self.store.proxied(), 1):
            if st.windows is not None:
                st.windows.roll_up()
            if n % chunk == 0:
                await asyncio.sleep(0)
        self.last_roll_up_s = time.perf_counter() - t0
        return self.last_roll_up_s

    async def run(self) -> None:
        """Scrapes until cancelled, one slice every ``interval / slices`` seconds
        on a fixed schedule (a late slice is not made up)."""
        loop = asyncio.get_running_loop()
        step = self.interval_s / self.slices
        next_at = loop.time()
        k = 0
        try:
            while True:
                if self.slices == 1:
                    await self.tick()
                    await self.roll_up()
                else:
                    task = asyncio.create_task(self.tick(k))
                    self._slice_tasks.add(task)
                    task.add_done_callback(self._slice_tasks.discard)
                    k = (k + 1) % self.slices
                next_at += step
                now = loop.time()
                if next_at < now:
                    next_at = now
                await asyncio.sleep(next_at - now)
        finally:
            await self.close()

    async def close(self) -> None:
        for task in list(self._slice_tasks):
            task.cancel()
        await asyncio.gather(*self._slice_tasks, return_exceptions=True)
        targets, self._targets = self._targets, {}
        await asyncio.gather(*(t.channel.close(grace=None) for t in targets.values()),
                             return_exceptions=True)
