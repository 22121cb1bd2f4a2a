"""``top`` printed once: tap sampled for a while, its routes as a table or JSON."""

from __future__ import annotations

import asyncio
import json

from meshtui.client.queries import TapQuery
from meshtui.client.source import Source
from meshtui.model.columns import ROUTE_COLUMNS
from meshtui.model.routes import RouteTable
from meshtui.model.tap import RequestTracker
from meshtui.output.table import aligned


async def print_top(source: Source, q: TapQuery, output: str, sample_s: float) -> int:
    """Samples tap for ``sample_s`` seconds, then prints the routes once."""
    tracker = RequestTracker(capacity=50_000)
    routes = RouteTable()

    async def sample() -> None:
        async for batch in source.tap(q):
            for ev in batch.events:
                req = tracker.observe(ev)
                if req.complete:
                    routes.observe(req)

    try:
        await asyncio.wait_for(sample(), sample_s)
    except TimeoutError:
        pass
    rows = routes.snapshot()
    if output == "json":
        print(json.dumps([r.to_json() for r in rows], indent=2))
        return 0
    if not rows:
        print(f"No requests seen in {sample_s:g}s.")
        return 0
    cols = list(ROUTE_COLUMNS.values())
    print(aligned([c.name for c in cols], [[c.text(r) for c in cols] for r in rows]))
    return 0
