"""``top`` printed once: tap sampled for a while, its routes as a table or JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

from meshtui.client.queries import TapBatch, TapQuery
from meshtui.client.source import Source
from meshtui.model.columns import ROUTE_COLUMNS, route_columns, route_json
from meshtui.model.feed_filter import FeedFilter
from meshtui.model.routes import DEFAULT_BY, RouteTable
from meshtui.model.tap import RequestTracker
from meshtui.output.table import aligned


async def print_top(source: Source, q: TapQuery, output: str, sample_s: float,
                    flt: FeedFilter | None = None, by: Sequence[str] = DEFAULT_BY,
                    limit: int | None = None) -> int:
    """Samples tap for ``sample_s`` seconds from its first batch, then prints the routes once.

    The sample starts with the stream: a controller that never answers fails the
    command (the source says so) rather than print an empty sample.
    """
    tracker = RequestTracker(capacity=50_000)
    routes = RouteTable()
    stream = source.tap(q)
    test = flt.test if flt else FeedFilter().test

    def take(batch: TapBatch) -> None:
        for ev in batch.events:
            req = tracker.observe(ev)
            if req.complete and test(req):
                routes.observe(req)
        for note in batch.notes:
            print(f"meshtui: {note}", file=sys.stderr)

    async def sample() -> None:
        async for batch in stream:
            take(batch)

    try:
        first = await anext(stream, None)
        if first is not None:
            take(first)
            try:
                await asyncio.wait_for(sample(), sample_s)
            except TimeoutError:
                pass
    finally:
        await stream.aclose()
    rows = routes.snapshot(by=by)[:limit]
    if output == "json":
        print(json.dumps([route_json(r, by) for r in rows], indent=2))
        return 0
    if not rows:
        print(f"No requests seen in {sample_s:g}s.")
        return 0
    names = route_columns(by, wide=output == "wide")
    print(aligned(names, [[ROUTE_COLUMNS[c].text(r) for c in names] for r in rows]))
    return 0
