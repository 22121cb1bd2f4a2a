"""The controller as a source: stat summaries, history and tap over gRPC.

The controller scrapes every proxy each second and keeps 15 minutes of
windows; it answers any query within them, and refuses one that reaches
further back, naming the source that can.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from meshtui.client.queries import (
    EdgeQuery,
    HistoryPoint,
    StatQuery,
    StatSnapshot,
    TapBatch,
    TapQuery,
)
from meshtui.errors import UsageError
from meshtui.model.edges import EdgeRow


class SourceRangeError(UsageError):
    """A time range the source does not hold: bad input, exit code 2."""


class ControllerSource:
    """The controller, over gRPC. Build it on the loop that will use it."""

    #: The controller keeps 15 minutes of windows (meshtui.model.windows).
    history_s = 15 * 60

    def __init__(self, server: str, *, tap_share: float | None = 0.4) -> None:
        self.server = server
        self.tap_share = tap_share
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
        return f"controller {self.server}"

    meshed_note = None  # MESHED: the inventory's pods whose proxy answers

    @property
    def tap_label(self) -> str:
        return self.label

    def _check_range(self, query: StatQuery, span_s: int) -> None:
        if query.until is None:
            return
        back = time.time() - query.until + span_s
        if back > self.history_s + 5:
            raise SourceRangeError(
                f"the controller holds the last {self.history_s // 60} minutes; for "
                f"older figures read a Prometheus with --prometheus URL")

    def _request(self, query: StatQuery):  # type: ignore[no-untyped-def]
        from meshtui.client.convert import selector
        from meshtui.v1 import controller_pb2

        req = controller_pb2.StatRequest(
            selector=selector(query.kind, query.namespace, query.name), window_s=query.window_s,
            end_ms=round(query.until * 1000) if query.until is not None else 0)
        if query.from_:
            getattr(req, "from").CopyFrom(selector(*query.from_))  # `from` is a keyword
        if query.to:
            req.to.CopyFrom(selector(*query.to))
        return req

    async def ready(self, timeout: float) -> None:
        await self.client.wait_ready(timeout)

    async def stats(self, query: StatQuery) -> StatSnapshot:
        from meshtui.client.convert import stat_row

        self._check_range(query, query.window_s)

        resp = await self.client.summary(self._request(query))
        # One named resource (the dashboard's charts): its latency histogram too.
        with_histogram = query.name is not None
        rows = [stat_row(r, histogram=with_histogram) for r in resp.rows]
        scraped = max((r.resource.last_scrape_ms for r in resp.rows), default=0)
        if query.owner:
            rows = [r for r in rows if r.query_owner == query.owner]
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

        self._check_range(query, span_s)
        resp = await self.client.history(controller_pb2.HistoryRequest(
            selector=selector(query.kind, query.namespace, query.name),
            window_s=span_s, step_s=step_s,
            end_ms=round(query.until * 1000) if query.until is not None else 0))

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

    async def edges(self, query: EdgeQuery) -> list[EdgeRow]:
        from meshtui.client.convert import edge_row, selector
        from meshtui.v1 import controller_pb2

        self._check_range(StatQuery(query.kind, until=query.until), query.window_s)
        resp = await self.client.edges(controller_pb2.EdgesRequest(
            selector=selector(query.kind, query.namespace, None), window_s=query.window_s,
            end_ms=round(query.until * 1000) if query.until is not None else 0))
        return [edge_row(e) for e in resp.edges]

    async def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        from meshtui.client.budget import Budget
        from meshtui.client.tap_stream import tap_batches

        # Events stay wire events until a screen reads them (the tap feed converts only
        # what it draws). Past the share of a core given for taking them in (40 % for
        # a screen), batches are shed, so that the stream is still read and keys
        # answered (benchmarks/tap_tui.py); printing takes every event.
        if self.tap_share is None:
            async for batch in tap_batches(self.server, query):
                yield batch
            return
        async for batch in tap_batches(self.server, query, Budget(self.tap_share), lazy=True):
            yield batch

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

