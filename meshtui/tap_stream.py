"""Tap and top without a terminal UI: stream events from the controller to stdout."""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from meshtui.model.tap import TapEvent


@dataclass(frozen=True)
class TapQuery:
    kind: str
    namespace: str | None
    name: str | None
    to: tuple[str, str | None, str | None] | None = None
    method: str = ""
    path_prefix: str = ""
    authority: str = ""
    max_rps: float = 100.0


@dataclass
class TapBatch:
    """What one wire batch brings the UI: events, and what was lost where."""

    events: Sequence[TapEvent]  # from a lazy stream: WireEvents (meshtui.client.tap_wire)
    drops: dict[str, int]  # "namespace/pod" → events lost since the last batch
    errors: dict[str, str]  # "namespace/pod" → why its stream broke
    rate_limited: int = 0
    shed: int = 0  # events this client received but had no time to show


def request_for(q: TapQuery):  # type: ignore[no-untyped-def]
    from meshtui.client.convert import selector
    from meshtui.v1 import common_pb2, controller_pb2

    req = controller_pb2.TapByResourceRequest(
        target=selector(q.kind, q.namespace, q.name),
        match=common_pb2.TapMatch(method=q.method, path_prefix=q.path_prefix,
                                  authority=q.authority),
        max_rps=q.max_rps)
    if q.to:
        req.to.CopyFrom(selector(*q.to))
    return req


# CPU seconds the garbage collector has taken, per thread; and when the
# running collection started, per thread.
_GC_SPENT: dict[int, float] = {}
_GC_START: dict[int, float] = {}


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    me = threading.get_ident()
    if phase == "start":
        _GC_START[me] = time.thread_time()
    elif me in _GC_START:
        _GC_SPENT[me] = _GC_SPENT.get(me, 0.0) + time.thread_time() - _GC_START.pop(me)


def _watch_gc() -> None:
    if _gc_timer not in gc.callbacks:
        gc.callbacks.append(_gc_timer)


class Budget:
    """How much of a core taking in wire events may take.

    A safety valve above what the machine can do: past this share the client
    sheds whole batches (counted, and shown as such) instead of starving the
    UI's own loop of the time it needs to answer keys and draw. What is spent
    is CPU time of the loop's thread (measure it with :meth:`clock`), so that
    other processes busy on a shared machine do not count as the client's own.
    """

    @staticmethod
    def clock() -> float:
        """The loop thread's CPU seconds, less what the garbage collector took.

        A collection runs inside whatever allocation set it off, often the
        conversion being measured; shedding the next batches would not give
        that time back, only lose events to a pause already over.
        """
        _watch_gc()
        return time.thread_time() - _GC_SPENT.get(threading.get_ident(), 0.0)

    def __init__(self, share: float, period_s: float = 0.5) -> None:
        self.share = share
        self.period_s = period_s
        self._start = time.perf_counter()
        self._spent = 0.0

    def allows(self) -> bool:
        now = time.perf_counter()
        if now - self._start >= self.period_s:
            self._start, self._spent = now, 0.0
        return self._spent < self.share * self.period_s

    def spend(self, seconds: float) -> None:
        self._spent += seconds


async def tap_batches(server: str, q: TapQuery, budget: Budget | None = None, *,
                      lazy: bool = False) -> AsyncIterator[TapBatch]:
    """Batches from the controller until the caller stops (the stream is then cancelled).

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


async def print_tap(server: str, q: TapQuery, output: str, limit: int | None) -> int:
    """Prints one line (or JSON object) per event until ``limit`` events or Ctrl-C."""
    from meshtui.render_tap import tap_json_line, tap_line

    out = sys.stdout
    n = 0
    async for batch in tap_batches(server, q):
        events = batch.events
        if limit is not None:
            events = events[: max(0, limit - n)]
        if output == "json":
            lines = [tap_json_line(e) for e in events]
        else:
            lines = [tap_line(e, wide=output == "wide") for e in events]
        if lines:
            out.write("\n".join(lines) + "\n")
            out.flush()
        n += len(events)
        for who, lost in batch.drops.items():
            print(f"meshtui: {lost} events lost at {who} (tap is lossy under load)",
                  file=sys.stderr)
        for who, why in batch.errors.items():
            print(f"meshtui: tap of {who} broke: {why}", file=sys.stderr)
        if limit is not None and n >= limit:
            return 0
    return 0


async def print_top(server: str, q: TapQuery, output: str, sample_s: float) -> int:
    """Samples tap for ``sample_s`` seconds, then prints the routes once."""
    import asyncio
    import json

    from meshtui.model.routes import RouteTable
    from meshtui.model.tap import RequestTracker
    from meshtui.render import aligned

    tracker = RequestTracker(capacity=50_000)
    routes = RouteTable()

    async def sample() -> None:
        async for batch in tap_batches(server, q):
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
    from meshtui.tui.top_screen import TOP_COLUMNS, route_text

    names = [c[0] for c in TOP_COLUMNS]
    print(aligned(names, [[route_text(n, r) for n in names] for r in rows]))
    return 0
