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
from collections.abc import Sequence

import grpc

from meshtui.controller.store import MeshStore, PodKey, PodState
from meshtui.model.windows import Series, Snapshot
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc

log = logging.getLogger("meshtui.controller")

CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
)
_EMPTY = proxy_pb2.ScrapeRequest()


def to_snapshot(resp: proxy_pb2.ScrapeResponse, st: PodState, store: MeshStore,
                now: float) -> Snapshot:
    """A scrape as the windows take it: series keyed by their labels, grouped by
    destination (see :mod:`meshtui.controller.store`)."""
    group_for = store.group_for
    groups = st.groups
    series: dict[tuple, Series] = {}
    for r in resp.requests:
        d = r.dst
        gk = (r.direction, d.namespace, d.deployment, d.pod, r.dst_addr)
        g = groups.get(gk) or group_for(st, *gk)
        series[(0, r.authority, *gk)] = Series(g, (r.count, 0, 0, 0, 0, 0, 0))
    for rs in resp.responses:
        d = rs.dst
        gk = (rs.direction, d.namespace, d.deployment, d.pod, rs.dst_addr)
        g = groups.get(gk) or group_for(st, *gk)
        h = rs.latency
        c = rs.count
        counters = (0, c, 0, 0, 0, 0, 0) if rs.success else (0, 0, c, 0, 0, 0, 0)
        series[(1, rs.authority, rs.status_code, rs.success, *gk)] = Series(
            g, counters, 0, list(h.indexes), list(h.counts), h.sum_us)
    for t in resp.tcp:
        d = t.dst
        gk = (t.direction, d.namespace, d.deployment, d.pod, t.dst_addr)
        g = groups.get(gk) or group_for(st, *gk)
        series[(2, *gk)] = Series(
            g, (0, 0, 0, t.open_total, t.close_total, t.read_bytes_total, t.write_bytes_total),
            t.open_connections)
    ident = resp.proxy
    start = ident.start_time_ms / 1000.0 if ident.start_time_ms else None
    return Snapshot(ident.run_id, now, series, start)


class _Target:
    __slots__ = ("addr", "channel", "stub")

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.channel = grpc.aio.insecure_channel(addr, options=list(CHANNEL_OPTIONS))
        self.stub = proxy_pb2_grpc.MetricsStub(self.channel)


class Scraper:
    """Scrapes every proxy of the store's inventory on a fixed tick.

    Args:
        store: where answers go.
        interval_s: the tick.
        timeout_s: each scrape's deadline (below the tick, so ticks never pile up).
    """

    def __init__(self, store: MeshStore, interval_s: float = 1.0, timeout_s: float = 0.8) -> None:
        self.store = store
        self.interval_s = interval_s
        self.timeout_s = min(timeout_s, interval_s * 0.9)
        self._targets: dict[PodKey, _Target] = {}
        self._down: set[PodKey] = set()  # pods whose proxy failed its last scrape (logged once)
        self.last_tick_s = 0.0  # how long the last tick took, all scrapes folded in
        self.ticks = 0
        self._closing: set[asyncio.Future[None]] = set()

    def _reconcile(self) -> list[tuple[PodState, _Target]]:
        out = []
        live: dict[PodKey, _Target] = {}
        for st in self.store.proxied():
            addr = str(st.pod.proxy)
            t = self._targets.get(st.key)
            if t is None or t.addr != addr:
                if t is not None:
                    self._closing.add(asyncio.ensure_future(t.channel.close(grace=None)))
                t = _Target(addr)
            live[st.key] = t
            out.append((st, t))
        for key, t in self._targets.items():
            if key not in live:
                self._closing.add(asyncio.ensure_future(t.channel.close(grace=None)))
        self._closing = {f for f in self._closing if not f.done()}
        self._targets = live
        self._down &= live.keys()
        return out

    async def _scrape(self, st: PodState, target: _Target) -> None:
        try:
            resp = await target.stub.Scrape(_EMPTY, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as e:
            st.last_error = f"{e.code().name}: {e.details() or ''}".strip()
            if st.key not in self._down:
                self._down.add(st.key)
                log.warning("proxy of %s/%s at %s failed a scrape: %s", st.pod.namespace,
                            st.pod.name, target.addr, st.last_error)
            return
        if st.windows is None or self.store.pods.get(st.key) is not st:
            return  # the inventory changed under us; the answer belongs to no one now
        now = time.time()
        ident = resp.proxy
        if st.run_id and ident.run_id != st.run_id:
            log.info("proxy of %s/%s restarted (run %s)", st.pod.namespace, st.pod.name,
                     ident.run_id)
        st.windows.observe(to_snapshot(resp, st, self.store, now))
        st.run_id, st.version, st.start_time_ms = ident.run_id, ident.version, ident.start_time_ms
        st.last_ok = time.monotonic()
        st.last_ok_wall = now
        st.last_error = ""
        if st.key in self._down:
            self._down.discard(st.key)
            log.info("proxy of %s/%s at %s answers again", st.pod.namespace, st.pod.name,
                     target.addr)

    async def tick(self) -> float:
        """One round: every proxy scraped (or timed out) and folded in; returns seconds."""
        t0 = time.perf_counter()
        pairs = self._reconcile()
        if pairs:
            await asyncio.gather(*(self._scrape(st, t) for st, t in pairs))
        self.ticks += 1
        self.last_tick_s = time.perf_counter() - t0
        return self.last_tick_s

    async def run(self) -> None:
        """Ticks until cancelled, on a fixed schedule (a slow tick is not made up)."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                await self.tick()
                next_at += self.interval_s
                now = loop.time()
                if next_at < now:
                    next_at = now
                await asyncio.sleep(next_at - now)
        finally:
            await self.close()

    async def close(self) -> None:
        targets, self._targets = self._targets, {}
        await asyncio.gather(*(t.channel.close(grace=None) for t in targets.values()),
                             return_exceptions=True)
