"""Tap batches from the controller, as the views take them.

Big wire batches are handed on in slices so a screen's loop gets a turn
between them; with a :class:`~meshtui.client.budget.Budget`, what arrives
while the budget is spent is shed (counted) rather than taken in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from meshtui.client.budget import Budget
from meshtui.client.queries import TapBatch, TapQuery
from meshtui.model.tap import TapEvent


def request_for(q: TapQuery):  # type: ignore[no-untyped-def]
    from meshtui.client.convert import selector
    from meshtui.v1 import common_pb2, controller_pb2

    req = controller_pb2.TapByResourceRequest(
        target=selector(q.kind, q.namespace, q.name),
        match=common_pb2.TapMatch(method=q.method, path_prefix=q.path_prefix,
                                  authority=q.authority),
        max_rps=q.max_rps, capture_body=q.capture_body)
    if q.to:
        req.to.CopyFrom(selector(*q.to))
    return req


async def tap_batches(server: str, q: TapQuery, budget: Budget | None = None, *,
                      lazy: bool = False) -> AsyncIterator[TapBatch]:
    """Batches from the controller until the caller stops (the stream is then cancelled);
    the first is empty, and says the controller answers.

    With a ``budget``, batches that arrive while it is spent are shed, not taken in.
    With ``lazy``, each batch's events are :class:`~meshtui.client.tap_wire.WireEvents`:
    still wire events, converted by whoever reads them, who charges the budget.
    """
    from meshtui.client.controller import ControllerClient
    from meshtui.client.convert import tap_event
    from meshtui.client.tap_wire import WireEvents
    from meshtui.model.sanitize import clean

    def take(wire: Any) -> tuple[Sequence[TapEvent], int]:
        if lazy:
            if budget is not None and not budget.allows():
                return [], len(wire)
            return WireEvents(wire, budget), 0
        return _convert(wire, budget, tap_event)

    async with ControllerClient(server) as client:
        # An empty batch first, once the controller answers: views say they stream
        # (a quiet resource may send nothing for long), and top's sample starts.
        await client.wait_ready()
        yield TapBatch([], {}, {}, 0, 0)
        async for batch in client.tap(request_for(q)):
            wire = batch.events
            # Big batches are handed on in slices, so a screen's loop gets a turn
            # (a key, a frame) between them rather than after a whole batch.
            for start in range(CHUNK, len(wire), CHUNK):
                part, shed = take(wire[start - CHUNK:start])
                yield TapBatch(part, {}, {}, 0, shed)
            last = wire[(max(len(wire) - 1, 0) // CHUNK) * CHUNK:]
            events, shed = take(last)
            drops: dict[str, int] = {}
            errors: dict[str, str] = {}
            for d in batch.drops:
                who = f"{clean(d.namespace)}/{clean(d.pod)}"
                if d.dropped:
                    drops[who] = drops.get(who, 0) + d.dropped
                if getattr(d, "error", ""):
                    errors[who] = clean(d.error)
            yield TapBatch(events, drops, errors, batch.rate_limited, shed)


CHUNK = 512


def _convert(wire: Any, budget: Budget | None, convert: Any) -> tuple[list[TapEvent], int]:
    """Wire events as model events, or none (all shed) when the budget is spent."""
    if budget is not None and not budget.allows():
        return [], len(wire)
    t0 = Budget.clock()
    events = [e for e in map(convert, wire) if e is not None]
    if budget is not None:
        budget.spend(Budget.clock() - t0)
    return events, 0
