"""Where the UI's data comes from.

The app never talks gRPC itself: it calls a :class:`Source`. The real one,
:class:`GrpcSource`, wraps the controller client; tests and screenshots pass
a deterministic one (:mod:`meshtui.tui.fake_source`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from meshtui.model.stats import StatRow
from meshtui.tap_stream import TapBatch, TapQuery


@dataclass(frozen=True)
class StatQuery:
    kind: str  # namespace | deployment | pod
    namespace: str | None = None  # None: every namespace
    name: str | None = None
    window_s: int = 60
    from_: tuple[str, str | None, str | None] | None = None  # (kind, namespace, name)
    to: tuple[str, str | None, str | None] | None = None
    owner: str | None = None  # pods only: those of this deployment


@dataclass(frozen=True)
class StatSnapshot:
    rows: tuple[StatRow, ...]
    taken_at: float = field(default_factory=time.time)  # wall clock, seconds
    proxies_reachable: int = 0
    proxies_total: int = 0
    last_scrape: float | None = None  # wall clock of the newest scrape behind the rows


@dataclass(frozen=True)
class HistoryPoint:
    at: float  # wall clock, seconds
    rps: float | None
    success: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class Source(Protocol):
    """What the UI needs from a mesh."""

    @property
    def label(self) -> str:
        """Shown in the status line: where the data comes from."""
        ...

    async def stats(self, query: StatQuery) -> StatSnapshot: ...

    async def history(self, query: StatQuery, span_s: int, step_s: int
                      ) -> dict[tuple[str, str, str], list[HistoryPoint]]:
        """Per row key, points over the last ``span_s`` seconds."""
        ...

    def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        """Batches of tap events until the caller stops iterating (closing the
        generator ends the stream)."""
        ...

    async def close(self) -> None: ...


class GrpcSource:
    """The controller, over gRPC. Build it on the loop that will use it."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._client = None

    @property
    def client(self):  # type: ignore[no-untyped-def]
        """Made on first use, so that it belongs to the loop that uses it."""
        if self._client is None:
            from meshtui.client.controller import ControllerClient

            self._client = ControllerClient(self.server)  # type: ignore[assignment]
        return self._client

    @property
    def label(self) -> str:
        return self.server

    def _request(self, query: StatQuery):  # type: ignore[no-untyped-def]
        from meshtui.client.convert import selector
        from meshtui.v1 import controller_pb2

        req = controller_pb2.StatRequest(
            selector=selector(query.kind, query.namespace, query.name), window_s=query.window_s)
        if query.from_:
            getattr(req, "from").CopyFrom(selector(*query.from_))  # `from` is a keyword
        if query.to:
            req.to.CopyFrom(selector(*query.to))
        return req

    async def stats(self, query: StatQuery) -> StatSnapshot:
        from meshtui.client.convert import stat_row

        resp = await self.client.summary(self._request(query))
        # One named resource (the dashboard's charts): its latency histogram too.
        with_histogram = query.name is not None
        rows = [stat_row(r, histogram=with_histogram) for r in resp.rows]
        scraped = max((r.resource.last_scrape_ms for r in resp.rows), default=0)
        if query.owner:
            rows = [r for r in rows if r.owner == query.owner]
        return StatSnapshot(tuple(rows),
                            taken_at=(resp.timestamp_ms / 1000) or time.time(),
                            proxies_reachable=resp.proxies_reachable,
                            proxies_total=resp.proxies_total,
                            last_scrape=scraped / 1000 if scraped else None)

    async def history(self, query: StatQuery, span_s: int, step_s: int
                      ) -> dict[tuple[str, str, str], list[HistoryPoint]]:
        import math

        from meshtui.client.convert import KIND_NAMES, selector
        from meshtui.model.sanitize import clean
        from meshtui.v1 import controller_pb2

        resp = await self.client.history(controller_pb2.HistoryRequest(
            selector=selector(query.kind, query.namespace, query.name),
            window_s=span_s, step_s=step_s))

        def opt(v: float) -> float | None:
            return None if math.isnan(v) else v

        out = {}
        for series in resp.series:
            r = series.resource
            key = (KIND_NAMES.get(r.type, "pod"), clean(r.namespace), clean(r.name))
            out[key] = [HistoryPoint(p.timestamp_ms / 1000, opt(p.rps), opt(p.success),
                                     opt(p.latency_ms_p50), opt(p.latency_ms_p95),
                                     opt(p.latency_ms_p99)) for p in series.points]
        return out

    async def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        from meshtui.tap_stream import Budget, tap_batches

        # Events stay wire events until a screen reads them (the tap feed converts only
        # what it draws). Past 40 % of a core for taking them in, batches are shed, so
        # that the stream is still read and keys answered (benchmarks/tap_tui.py).
        async for batch in tap_batches(self.server, query, Budget(0.4), lazy=True):
            yield batch

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

