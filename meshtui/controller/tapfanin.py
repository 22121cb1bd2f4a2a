"""Tap by resource: one ``Tap.Observe`` stream per matching proxy, merged into
one stream of batches for one client.

* Which proxies: the target's own pods, watching inbound and outbound, as
  Linkerd's tap of a resource does; with ``to``, the target's pods watching
  outbound with a destination match. The set follows the
  inventory while the stream is open.
* ``max_rps`` (0: unlimited) holds across the merged stream: a token bucket
  admits a request at its ``request_init``; its later events follow it, and the
  later events of a request not admitted are skipped with it. Every request
  skipped is counted in ``rate_limited``.
* Every loss is passed on: what a proxy reports lost becomes a
  ``SourceDrops`` for that pod. The merge buffer is bounded; when the client
  reads slower than the proxies send, the readers stop reading, gRPC flow
  control pushes back, and the proxies drop — and count — in their own queues.
* Addresses the proxy could not name are named from the inventory.
* A proxy that goes away is reported once (``SourceDrops.error``) and its
  stream reopened every second or two; the others carry on. When the client
  goes away, every upstream stream is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc

from meshtui.controller.dial import Dialer
from meshtui.controller.stats import DEPLOY, NS, Sel
from meshtui.controller.store import MeshStore, PodKey, PodState
from meshtui.model.tap import MAX_CAPTURE_BODY
from meshtui.v1 import common_pb2, controller_pb2, proxy_pb2, proxy_pb2_grpc

log = logging.getLogger("meshtui.controller")

MAX_BATCH = 2048  # events per message to the client
MAX_PENDING = 32 * 1024  # events merged but not yet sent
MAX_TRACKED = 100_000  # admitted requests awaiting their last event


def destination_match(to: Sel) -> common_pb2.Workload:
    w = common_pb2.Workload(namespace=to.namespace)
    if to.type == NS:
        w.namespace = to.name or to.namespace
    elif to.type == DEPLOY:
        w.deployment = to.name
    else:
        w.pod = to.name
    return w


class _Limiter:
    """Admits up to ``rate`` requests a second (bursts of one second's worth)."""

    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def admit(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class TapFanIn:
    """One client's tap: readers per proxy, a bounded merge, batches out.

    Args:
        store: the controller's inventory and pods.
        target: whose pods to tap.
        to: only requests to this destination (outbound of the target's pods).
        match: the client's filters (method, path prefix, authority).
        max_rps: requests a second to pass at most; 0 means unlimited.
        capture_body: bytes of each body the proxies copy (0: none); passed on
            clamped to :data:`~meshtui.model.tap.MAX_CAPTURE_BODY` (each proxy
            clamps again to its own ceiling).
    """

    def __init__(self, store: MeshStore, target: Sel, to: Sel | None,
                 match: common_pb2.TapMatch, max_rps: float,
                 retry_s: float = 1.0, dialer: Dialer | None = None,
                 capture_body: int = 0) -> None:
        self.store = store
        self.dialer = dialer or Dialer()
        self.target = target
        self.to = to
        up = common_pb2.TapMatch()
        up.CopyFrom(match)
        # Without ``to``, both ways, as Linkerd's tap of a resource: what its pods
        # serve and what they call (web's gRPC calls to emoji and voting).
        up.direction = common_pb2.OUTBOUND if to is not None else \
            common_pb2.DIRECTION_UNSPECIFIED
        if to is not None:
            up.destination.CopyFrom(destination_match(to))
        else:
            up.ClearField("destination")
        # Upstream unlimited: what max_rps skips must be counted, so it is skipped here.
        self.request = proxy_pb2.ObserveRequest(
            match=up, max_rps=0.0, capture_body=min(capture_body, MAX_CAPTURE_BODY))
        self.limiter = _Limiter(max_rps) if max_rps > 0 else None
        # With bodies an event may carry 128 KiB: events per message and held are
        # bounded so that a message stays ~8 MiB and what waits ~32 MiB.
        per_request = 2 * self.request.capture_body
        self.max_batch = min(MAX_BATCH, 3 * max(1, (8 << 20) // per_request)) \
            if per_request else MAX_BATCH
        self.max_pending = min(MAX_PENDING, 3 * max(1, (32 << 20) // per_request)) \
            if per_request else MAX_PENDING
        self.retry_s = retry_s
        self._pending: list = []
        self._drops: dict[PodKey, int] = {}
        self._errors: dict[PodKey, str] = {}
        self._rate_limited = 0
        self._admitted: dict[tuple[PodKey, int, int], None] = {}
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._readers: dict[PodKey, tuple[str, asyncio.Task[None]]] = {}
        self._names: dict[tuple[str, int], tuple[str, str, str] | None] = {}
        self._names_gen = -1
        self.delivered = 0

    def sources(self) -> list[PodState]:
        return [st for st in self.store.proxied() if self.target.has_pod(st)]

    # -- readers ---------------------------------------------------------------

    async def _read(self, st: PodState, addr: str) -> None:
        key = st.key
        channel = self.dialer.channel(addr)
        stub = proxy_pb2_grpc.TapStub(channel)
        broken = False
        try:
            while True:
                call = stub.Observe(self.request)
                reason = "the proxy ended the stream"
                try:
                    async for batch in call:
                        if broken:
                            broken = False
                            log.info("tap: %s/%s streams again", key[0], key[1])
                        self._take(key, batch)
                        while len(self._pending) >= self.max_pending:
                            self._space.clear()
                            await self._space.wait()
                except grpc.aio.AioRpcError as e:
                    reason = f"{e.code().name}: {e.details() or ''}".strip()
                finally:
                    call.cancel()
                if not broken:
                    broken = True
                    self._errors[key] = reason
                    self._ready.set()
                    log.warning("tap: stream from %s/%s at %s broke: %s", key[0], key[1],
                                addr, reason)
                await asyncio.sleep(self.retry_s)
        finally:
            await channel.close(grace=None)

    def _name(self, ip: str, port: int) -> tuple[str, str, str] | None:
        if self._names_gen != self.store.generation:
            self._names.clear()
            self._names_gen = self.store.generation
        k = (ip, port)
        if k in self._names:
            return self._names[k]
        pod = self.store.inventory.resolve(ip, port)
        v = None if pod is None else (pod.namespace, pod.deployment, pod.name)
        if len(self._names) < 10_000:
            self._names[k] = v
        return v

    def _enrich(self, ep: common_pb2.Endpoint) -> None:
        w = ep.workload
        if w.pod or not ep.ip:
            return
        found = self._name(ep.ip, ep.port)
        if found is not None:
            w.namespace, w.deployment, w.pod = found

    def _take(self, key: PodKey, batch: proxy_pb2.TapBatch) -> None:
        if batch.dropped:
            self._drops[key] = self._drops.get(key, 0) + batch.dropped
        pending = self._pending
        limiter = self.limiter
        admitted = self._admitted
        enrich = self._enrich
        for ev in batch.events:
            if limiter is not None:
                sid = (key, ev.id.base, ev.id.stream)
                kind = ev.WhichOneof("event")
                if kind == "request_init":
                    if not limiter.admit():
                        self._rate_limited += 1
                        continue
                    if len(admitted) >= MAX_TRACKED:
                        del admitted[next(iter(admitted))]
                    admitted[sid] = None
                elif sid not in admitted:
                    continue
                elif kind == "response_end":
                    del admitted[sid]
            enrich(ev.source)
            enrich(ev.destination)
            pending.append(ev)
        self._ready.set()

    def _reconcile(self) -> None:
        want = {st.key: st for st in self.sources()}
        for key, (addr, task) in list(self._readers.items()):
            st = want.get(key)
            if st is None or str(st.pod.proxy) != addr:
                task.cancel()
                del self._readers[key]
        for key, st in want.items():
            if key not in self._readers:
                addr = str(st.pod.proxy)
                self._readers[key] = (addr, asyncio.create_task(self._read(st, addr)))

    # -- the merged stream -------------------------------------------------------

    def _drain(self) -> controller_pb2.TapByResourceBatch:
        out = controller_pb2.TapByResourceBatch()
        pending = self._pending
        if len(pending) > self.max_batch:
            take, self._pending = pending[:self.max_batch], pending[self.max_batch:]
        else:
            take, self._pending = pending, []
            self._ready.clear()
        out.events.extend(take)
        self.delivered += len(take)
        if self._drops or self._errors:
            for key in self._drops.keys() | self._errors.keys():
                out.drops.add(namespace=key[0], pod=key[1], dropped=self._drops.get(key, 0),
                              error=self._errors.get(key, ""))
            self._drops.clear()
            self._errors.clear()
        if self._rate_limited:
            out.rate_limited = self._rate_limited
            self._rate_limited = 0
        if len(self._pending) < self.max_pending:
            self._space.set()
        return out

    async def batches(self) -> AsyncIterator[controller_pb2.TapByResourceBatch]:
        """Merged batches until the caller stops (which cancels every upstream stream)."""
        self._reconcile()
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time() + 1.0
        try:
            while True:
                timeout = max(0.0, next_reconcile - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), timeout)
                if loop.time() >= next_reconcile:
                    self._reconcile()
                    next_reconcile = loop.time() + 1.0
                if self._pending or self._drops or self._errors or self._rate_limited:
                    yield self._drain()
        finally:
            await self.close()

    async def close(self) -> None:
        readers, self._readers = self._readers, {}
        for _, task in readers.values():
            task.cancel()
        await asyncio.gather(*(t for _, t in readers.values()), return_exceptions=True)
