"""Tap events kept as they came off the wire, turned into model events only when looked at.

Turning one wire event into a model event (:func:`meshtui.client.convert.tap_event`)
costs several microseconds in Python, too much to pay for every event of a
50,000 events/s stream when a screen shows fifty lines at a time. So the live
feed keeps the wire events themselves, and joins the steps of each request
on a key read from a few cheap fields (:class:`StepTracker`); a step is
converted, and cleaned for display, only when it is drawn, filtered or opened.

:class:`WireEvents` carries a slice of a wire batch to whoever iterates it as
model events (``top``), converting on the way and charging the time to the
stream's :class:`~meshtui.client.budget.Budget`. :class:`LineEvents` does the same
for a replayed file's lines (:mod:`meshtui.model.tap_lines`), kept as msgspec read them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from meshtui.client.convert import (
    DIRECTIONS,
    endpoint,
    init_text,
    step_header_values,
    tap_event,
)
from meshtui.model.tap import (
    Direction,
    Endpoint,
    Request,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    TapEvent,
)
from meshtui.model.tap_lines import Line
from meshtui.v1 import common_pb2

if TYPE_CHECKING:
    from meshtui.client.budget import Budget

# A step is a model event (from a source that makes them, such as the fake one),
# a wire event, still as protobuf, or a line of a replayed file as msgspec decoded
# it (meshtui.model.tap_lines.Line); each turns into a model event with :func:`as_event`.
Step = Any

_WIRE_SLOTS = {"request_init": 0, "response_init": 1, "response_end": 2}
_INBOUND = common_pb2.INBOUND


def as_event(step: Step) -> TapEvent | None:
    """The model event a step is; None for a wire event of a kind this client does not know."""
    if isinstance(step, TapEvent):
        return step
    if type(step) is Line:
        return step.event()
    return tap_event(step)


def _model_slot(ev: TapEvent) -> int:
    if isinstance(ev, RequestInit):
        return 0
    if isinstance(ev, ResponseInit):
        return 1
    return 2


class Steps:
    """One request's steps, joined as they arrive and kept as they came.

    The record is shared by the feed lines of its steps, so that a request's
    first line can be coloured and filtered by the status its response brought.
    It answers what a feed filter asks of a request (the attributes of
    :class:`~meshtui.model.tap.Request` it reads) as cheaply as it can: the
    response's status and latency straight from the wire, the rest from steps
    converted one at a time, each once.
    """

    __slots__ = ("_events", "_request", "_verdict", "born", "end", "init", "key", "response")

    def __init__(self, key: object = None, born: int = 0) -> None:
        # The steps, each set once: a step seen again starts another record.
        self.init: Step = None
        self.response: Step = None
        self.end: Step = None
        self.key = key  # what the tracker joins it on
        self.born = born  # events the tracker had joined when this one opened
        self._events: list[TapEvent | None] | None = None  # converted, made when needed
        self._request: Request | None = None  # dropped whenever a step arrives
        self._verdict: tuple[object, int, bool] | None = None  # see passes()

    @property
    def steps(self) -> tuple[Step, Step, Step]:
        """Request init, response init and end, as they came (None: not seen)."""
        return (self.init, self.response, self.end)

    def step(self, slot: int) -> Step:
        """Step 0 (request init), 1 (response init) or 2 (end)."""
        return (self.init, self.response, self.end)[slot]

    def set(self, slot: int, step: Step) -> None:
        setattr(self, _SLOT_NAMES[slot], step)
        self._request = None

    @property
    def known(self) -> int:
        """How many steps are here: changes whenever what a line shows may change."""
        return (self.init is not None) + (self.response is not None) + (self.end is not None)

    def event(self, slot: int) -> TapEvent | None:
        """The model event of step ``slot``, converted once."""
        step = self.step(slot)
        if step is None or isinstance(step, TapEvent):
            return step
        # A slot is filled once (a step seen again starts another record), so what
        # is converted here never goes stale.
        events = self._events
        if events is None:
            events = self._events = [None, None, None]
        ev = events[slot]
        if ev is None:
            ev = events[slot] = as_event(step)
        return ev

    def request(self) -> Request:
        """The steps as a model :class:`Request`, every string cleaned for display."""
        req = self._request
        if req is None:
            for slot in range(3):
                ev = self.event(slot)
                if ev is None:
                    continue
                if req is None:
                    req = Request.of(ev)
                req.add(ev)
            if req is None:  # cannot happen: a record is made with a known step
                raise ValueError("a request with no known step")
            self._request = req
        return req

    def passes(self, test: Callable[[Steps], bool]) -> bool:
        """``test(self)``, remembered until a step arrives: the feed holds a line per
        step, so a filter over the ring asks each record up to three times."""
        v = self._verdict
        known = (self.init is not None) + (self.response is not None) + (self.end is not None)
        if v is not None and v[0] is test and v[1] == known:
            return v[2]
        result = test(self)
        self._verdict = (test, known, result)
        return result

    # ---- what a feed filter reads (meshtui.model.feed_filter.Requestlike) -------

    @property
    def status(self) -> int | None:
        """The response's HTTP status, once its head has arrived."""
        rsp = self.response
        if rsp is None:
            return None
        if type(rsp) is ResponseInit or type(rsp) is Line:
            return rsp.status
        return rsp.response_init.http_status

    @property
    def latency_us(self) -> int | None:
        """Time to the response's head."""
        rsp = self.response
        if rsp is None:
            return None
        if type(rsp) is ResponseInit or type(rsp) is Line:
            return rsp.latency_us
        return rsp.response_init.since_request_init_us

    @property
    def grpc_status(self) -> int | None:
        """The gRPC status the response ended with, when it was gRPC."""
        end = self.end
        if end is None or type(end) is ResponseEnd or type(end) is Line:
            return end.grpc_status if end is not None else None
        e = end.response_end
        return e.grpc_status_code if e.WhichOneof("eos") == "grpc_status_code" else None

    @property
    def response_bytes(self) -> int | None:
        """The response body's length, once it ended."""
        end = self.end
        if end is None or type(end) is ResponseEnd or type(end) is Line:
            return end.response_bytes if end is not None else None
        return int(end.response_end.response_bytes)

    def header_values(self, name: str) -> list[str]:
        """Values of the headers and trailers called ``name``, read from the steps
        alone: converting whole steps for them costs five times as much."""
        name = name.lower()
        out: list[str] = []
        for step in self.steps:
            if step is None:
                continue
            if isinstance(step, TapEvent):
                hs = getattr(step, "trailers" if type(step) is ResponseEnd else "headers")
                out.extend(v for n, v in hs if n.lower() == name)
            elif type(step) is Line:
                out.extend(step.header_values(name))
            else:
                out.extend(step_header_values(step, name))
        return out

    def _init_text(self, field: str) -> str | None:
        # Read and cleaned straight from the wire: a filter looks at every line,
        # and converting the whole step for one string costs ten times as much.
        init = self.init
        if init is None:
            return None
        if isinstance(init, TapEvent):
            return str(getattr(init, field))
        if type(init) is Line:
            return init.text(field)
        return init_text(init.request_init, field)

    @property
    def method(self) -> str | None:
        return self._init_text("method")

    @property
    def path(self) -> str | None:
        return self._init_text("path")

    @property
    def authority(self) -> str | None:
        return self._init_text("authority")

    def _first(self) -> Step:
        return next(s for s in self.steps if s is not None)

    @property
    def direction(self) -> Direction:
        first = self._first()
        if isinstance(first, TapEvent) or type(first) is Line:
            return first.direction
        return DIRECTIONS.get(first.proxy_direction, Direction.UNKNOWN)

    @property
    def source(self) -> Endpoint:
        first = self._first()
        if isinstance(first, TapEvent) or type(first) is Line:
            return first.source
        return endpoint(first.source)

    @property
    def destination(self) -> Endpoint:
        first = self._first()
        if isinstance(first, TapEvent) or type(first) is Line:
            return first.destination
        return endpoint(first.destination)


_SLOT_NAMES = ("init", "response", "end")
Joined = tuple[list[Steps], bytearray]  # per event: its request, and which step it is


class StepTracker:
    """Joins steps into :class:`Steps` records, holding at most ``capacity`` unfinished.

    The same rules as :class:`meshtui.model.tap.RequestTracker`: a request
    leaves when its end arrives; when full, the oldest unfinished one is let
    go (counted in ``evicted``), as is one whose stream id comes back with a
    step it already has. Wire events are joined on (connection, stream,
    direction, the proxy's address): read from the wire without converting
    anything, and the same for every step of one request.

    With a ``horizon``, a request still unfinished that many events after
    its first step is let go too (counted in ``evicted``). A wire event holds
    on to the memory of the whole batch it came in, so a request whose end
    was lost must not outlive the feed's ring: it would keep a batch alive
    that the ring has long let go.
    """

    def __init__(self, capacity: int = 10_000, horizon: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.horizon = horizon
        self.evicted = 0
        self.completed = 0
        self._open: dict[object, Steps] = {}
        self._seen = 0  # events joined so far
        self._opened: deque[Steps] = deque()  # oldest first, for the horizon

    def __len__(self) -> int:
        """Unfinished requests held."""
        return len(self._open)

    def join_wire(self, wire: Iterable[Any]) -> Joined:
        """Wire events joined to their requests: for each event (unknown kinds left
        out) its record and which step it is, in two parallel sequences.

        Nothing is made per event but what the join itself needs (a record per
        request, its key): a live feed keeps these for every event it holds, and
        each object Python's collector tracks costs time in every collection.
        """
        slots = _WIRE_SLOTS

        def keyed() -> Iterator[tuple[object, int, Step]]:
            for ev in wire:
                slot = slots.get(ev.WhichOneof("event"))
                if slot is None:
                    continue
                sid = ev.id
                direction = ev.proxy_direction
                proxy = ev.destination if direction == _INBOUND else ev.source
                yield (sid.base, sid.stream, direction, proxy.ip, proxy.port), slot, ev

        return self._join(keyed())

    def join_events(self, events: Iterable[TapEvent | Line]) -> Joined:
        """Model events, or a replay's lines (some of which may be model events),
        joined to their requests, as :meth:`join_wire` does; a replay's batch
        (:class:`LineEvents`) is joined as it was read, nothing converted."""
        if isinstance(events, LineEvents):
            events = events.lines
        return self._join((ev.request_key, ev.slot if isinstance(ev, Line) else _model_slot(ev), ev)
                          for ev in events)

    def _join(self, keyed: Iterable[tuple[object, int, Step]]) -> Joined:
        recs: list[Steps] = []
        add = recs.append
        kinds = bytearray()
        kind = kinds.append
        place = self._place
        open_ = self._open
        capacity = self.capacity
        opened = self._opened.append
        seen = self._seen
        for key, slot, ev in keyed:
            # The usual cases inline (this runs for every event of the stream):
            # a request's first step, and a later step of an open one.
            rec = open_.get(key)
            if rec is None:
                if slot == 0 and len(open_) < capacity:
                    rec = open_[key] = Steps(key, seen)
                    rec.init = ev
                    opened(rec)
                else:
                    rec = place(key, slot, ev)
            elif slot == 1 and rec.response is None:
                rec.response = ev
                rec._request = None
            elif slot == 2 and rec.end is None:
                rec.end = ev
                rec._request = None
                del open_[key]
                self.completed += 1
            else:
                rec = place(key, slot, ev)
            add(rec)
            kind(slot)
        self._seen += len(recs)
        self._expire()
        return recs, kinds

    def _expire(self) -> None:
        """Lets go of requests opened more than ``horizon`` events ago and still open."""
        opened = self._opened
        if self.horizon is None:
            opened.clear()
            return
        oldest = self._seen - self.horizon
        open_ = self._open
        while opened and opened[0].born < oldest:
            rec = opened.popleft()
            if open_.get(rec.key) is rec:
                del open_[rec.key]
                self.evicted += 1

    def _place(self, key: object, slot: int, step: Step) -> Steps:
        open_ = self._open
        rec = open_.get(key)
        if rec is not None and rec.step(slot) is not None:
            del open_[key]  # the stream id came back: its proxy restarted
            self.evicted += 1
            rec = None
        if rec is None:
            rec = Steps(key, self._seen)
            if slot != 2:
                while len(open_) >= self.capacity:
                    del open_[next(iter(open_))]
                    self.evicted += 1
                open_[key] = rec
                self._opened.append(rec)
        rec.set(slot, step)
        if slot == 2:
            open_.pop(key, None)
            self.completed += 1
        return rec


def body_limit(events: Iterable[Any]) -> int | None:
    """The limit of the first captured body among ``events`` (wire events as they came,
    model events or a replay's lines), None if none carries one: what the proxies
    actually copy, which their ``--max-capture-body`` may hold below what was asked."""
    wire = getattr(events, "wire", None)
    if wire is not None:
        for ev in wire:
            if ev.WhichOneof("event") == "response_end" and \
                    ev.response_end.HasField("request_body"):
                return int(ev.response_end.request_body.limit)
        return None
    for ev in getattr(events, "lines", events):
        if isinstance(ev, Line):
            if ev.slot != 2 or not ev.has_bodies:
                continue
            ev = ev.event()
        body = getattr(ev, "request_body", None)
        if body is not None:
            return int(body.limit)
    return None


class WireEvents(Sequence[TapEvent]):
    """A slice of a wire batch, read as model events (converted as they are read).

    ``wire`` gives the raw events to a reader that converts only what it
    needs; whoever does that charges its time with :meth:`spend`. Reading the
    events as model events charges the conversion itself.
    """

    def __init__(self, wire: Sequence[Any], budget: Budget | None = None) -> None:
        self.wire = wire
        self.budget = budget

    def spend(self, seconds: float) -> None:
        """Charges CPU time spent on these events (:meth:`Budget.clock`) to the stream's budget."""
        if self.budget is not None:
            self.budget.spend(seconds)

    def __len__(self) -> int:
        return len(self.wire)

    @overload
    def __getitem__(self, index: int) -> TapEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TapEvent]: ...

    def __getitem__(self, index: int | slice) -> TapEvent | Sequence[TapEvent]:
        if isinstance(index, slice):
            return list(WireEvents(self.wire[index], self.budget))
        ev = tap_event(self.wire[index])
        if ev is None:
            raise ValueError(f"event {index} is of a kind this client does not know")
        return ev

    def __iter__(self) -> Iterator[TapEvent]:
        clock = self.budget.clock if self.budget is not None else time.thread_time
        t0 = clock()
        events = [e for e in map(tap_event, self.wire) if e is not None]
        self.spend(clock() - t0)
        return iter(events)


class LineEvents(Sequence[TapEvent]):
    """A batch of a replay: its steps as read (``lines``: each a
    :class:`~meshtui.model.tap_lines.Line`, or a model event where a line took the
    general reader), read as model events by whoever iterates it (``top``, printed
    output). The feed joins the lines themselves (:meth:`StepTracker.join_events`)
    and converts one only when it is looked at.
    """

    def __init__(self, lines: list[TapEvent | Line]) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> TapEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TapEvent]: ...

    def __getitem__(self, index: int | slice) -> TapEvent | Sequence[TapEvent]:
        if isinstance(index, slice):
            return [_event(s) for s in self.lines[index]]
        return _event(self.lines[index])

    def __iter__(self) -> Iterator[TapEvent]:
        return map(_event, self.lines)


def _event(step: TapEvent | Line) -> TapEvent:
    return step if isinstance(step, TapEvent) else step.event()
