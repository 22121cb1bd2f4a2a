"""A filter applied to a stream of tap steps, for output that prints steps as they come.

A plain ``tap`` prints each step of a request when it arrives, but a filter on
the response (``status=5xx``) cannot decide a request when it starts. So a
:class:`TapSieve` decides each step as soon as the filter can: a filter on
request fields only decides at the request's first step, and its later steps
follow that decision; a filter that reads the response (or headers, which a
response may bring) holds the request's steps until its end and lets them all
through at once, or none. Held requests are bounded by the tracker's capacity:
one let go unfinished is dropped and counted in ``dropped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshtui.model.feed_filter import FeedFilter
from meshtui.model.tap import Request, RequestTracker, ResponseEnd, TapEvent


@dataclass
class TapSieve:
    """Steps in, the steps of the requests that pass out.

    Attributes:
        dropped: requests held for their response and let go before it came.
    """

    filter: FeedFilter
    capacity: int = 10_000
    dropped: int = 0
    _tracker: RequestTracker = field(init=False)
    _held: dict[int, tuple[Request, list[TapEvent]]] = field(default_factory=dict, init=False)
    _passed: dict[int, tuple[Request, bool]] = field(default_factory=dict, init=False)
    _waits: bool = field(init=False)

    def __post_init__(self) -> None:
        self._tracker = RequestTracker(capacity=self.capacity)
        self._waits = self.filter.needs_response or any(
            t.key.startswith("h.") for t in self.filter.terms)

    def feed(self, events: list[TapEvent] | tuple[TapEvent, ...]) -> list[TapEvent]:
        """The steps of ``events`` (and held ones) to let through now, in order."""
        if not self.filter:
            return list(events)
        out: list[TapEvent] = []
        test = self.filter.test
        # Keyed by id() of the record, kept alive by the entry itself, so that an
        # id cannot be reused while it is a key.
        held, passed_by = self._held, self._passed
        for ev in events:
            req = self._tracker.observe(ev)
            key = id(req)
            end = isinstance(ev, ResponseEnd)
            if not self._waits:
                # Decided at the first step seen: request fields are all known there.
                entry = passed_by.get(key)
                passed = test(req) if entry is None else entry[1]
                if entry is None and not end:
                    passed_by[key] = (req, passed)
                if passed:
                    out.append(ev)
                if end:
                    passed_by.pop(key, None)
                continue
            kept = held.get(key)
            if kept is None:
                kept = held[key] = (req, [])
            kept[1].append(ev)
            if end:
                del held[key]
                if test(req):
                    out.extend(kept[1])
        self._forget_evicted()
        return out

    def _forget_evicted(self) -> None:
        # Records the tracker let go never end here: drop what is kept for them.
        # Every record kept is open unless some were let go, so count first.
        if len(self._held) + len(self._passed) <= len(self._tracker):
            return
        live = self._tracker.open_ids()
        gone = [k for k in self._held if k not in live]
        for k in gone:
            del self._held[k]
        self.dropped += len(gone)
        for k in [k for k in self._passed if k not in live]:
            del self._passed[k]
