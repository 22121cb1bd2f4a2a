"""Route aggregation: the table ``meshtui top`` shows, built from tap.

A route is who called whom with what: source, destination, method and path,
as one proxy saw it (a request seen by both its proxies counts once on each
side, under its direction, rather than twice on one row). Paths lose their
query string, as Linkerd's ``top`` does, so ``/api/list?page=2`` and
``/api/list?page=3`` are one route.

Per route: how many completed, how many succeeded, and the best, worst and
last latency (request start to response end). The table holds at most
``max_routes`` routes; the one seen least recently makes room and is counted.

The table keeps every route in full (the response's status and the authority
too); a snapshot groups them by any of :data:`GROUPS` (``top --by``), so
that another grouping is a new snapshot, not a new count from nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from meshtui.model.tap import Direction, Request


def normalize_path(path: str) -> str:
    """The path without its query string or fragment: ``/a?b=1`` → ``/a``."""
    for sep in ("?", "#"):
        path = path.partition(sep)[0]
    return path


class RouteKey(NamedTuple):
    """A route. ``source`` and ``destination`` are labels: ``deploy/web``, ``po/x`` or an IP.

    A tuple, so that making and hashing one per request stays cheap.
    """

    source: str
    destination: str
    method: str
    path: str
    source_namespace: str = ""
    destination_namespace: str = ""
    direction: Direction = Direction.UNKNOWN
    status: int = 0  # the response's; 0 when none came (a reset) or not grouped by
    authority: str = ""

    @classmethod
    def of(cls, request: Request) -> RouteKey | None:
        """The route a request took; None if its start was not seen (no method or path)."""
        init = request.init
        if init is None:
            return None
        src, dst = request.source, request.destination
        return cls(src.label, dst.label, init.method, normalize_path(init.path),
                   src.workload.namespace, dst.workload.namespace, request.direction,
                   request.status or 0, init.authority)

    def grouped(self, by: Sequence[str]) -> RouteKey:
        """This key with what ``by`` leaves out blanked (the direction always stays:
        it keeps a request seen by both its proxies from counting twice on a row)."""
        blank: dict[str, Any] = {}
        for group, fields in _GROUP_FIELDS.items():
            if group not in by:
                blank.update(fields)
        return self._replace(**blank)


#: What ``top --by`` groups on, in the order the columns show them.
GROUPS = ("src", "dst", "method", "path", "status", "authority")
DEFAULT_BY = ("src", "dst", "method", "path")
_GROUP_FIELDS: dict[str, dict[str, Any]] = {
    "src": {"source": "", "source_namespace": ""},
    "dst": {"destination": "", "destination_namespace": ""},
    "method": {"method": ""}, "path": {"path": ""}, "status": {"status": 0},
    "authority": {"authority": ""},
}


def parse_by(text: str) -> tuple[str, ...]:
    """``src,dst,status`` → the groups in column order; ValueError naming a bad one."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in GROUPS]
    if bad or not names:
        raise ValueError(f"--by takes some of {','.join(GROUPS)}, not {text!r}")
    return tuple(g for g in GROUPS if g in names)


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One route's figures at the moment of a snapshot. Latencies are microseconds."""

    key: RouteKey
    count: int
    successes: int
    best_us: int
    worst_us: int
    last_us: int
    last_seen_us: int  # wall clock of the latest request's start, µs since the epoch

    @property
    def success_rate(self) -> float:
        """A fraction 0..1 (a row exists only once a request completed)."""
        return self.successes / self.count


# Sortable columns: name → the raw value a row sorts on.
SORT_KEYS: dict[str, Callable[[RouteRow], Any]] = {
    "source": lambda r: r.key.source,
    "destination": lambda r: r.key.destination,
    "method": lambda r: r.key.method,
    "path": lambda r: r.key.path,
    "direction": lambda r: r.key.direction.value,
    "status": lambda r: r.key.status,
    "authority": lambda r: r.key.authority,
    "count": lambda r: r.count,
    "success": lambda r: r.success_rate,
    "best": lambda r: r.best_us,
    "worst": lambda r: r.worst_us,
    "last": lambda r: r.last_us,
}


class _Figures:
    """What a route has gathered so far (mutable; snapshots copy it out)."""

    __slots__ = ("best", "count", "last", "last_seen", "successes", "worst")

    def __init__(self, latency_us: int, success: bool, seen_us: int) -> None:
        self.count = 1
        self.successes = int(success)
        self.best = self.worst = self.last = latency_us
        self.last_seen = seen_us

    def add(self, latency_us: int, success: bool, seen_us: int) -> None:
        self.count += 1
        self.successes += success
        self.best = min(self.best, latency_us)
        self.worst = max(self.worst, latency_us)
        self.last = latency_us
        self.last_seen = max(self.last_seen, seen_us)


class RouteTable:
    """Per-route counts and latencies, bounded, least recently seen evicted first.

    Attributes:
        evicted: routes dropped to make room.
        skipped: completed requests not counted because their start or their
            outcome was not seen (tap began in the middle of them).
    """

    def __init__(self, max_routes: int = 10_000) -> None:
        if max_routes < 1:
            raise ValueError("max_routes must be at least 1")
        self.max_routes = max_routes
        self.evicted = 0
        self.skipped = 0
        self._routes: OrderedDict[RouteKey, _Figures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._routes)

    def observe(self, request: Request) -> bool:
        """Counts a completed request; False (and counted in ``skipped``) if it cannot be."""
        key = RouteKey.of(request)
        success = request.success
        latency = request.total_us
        if not request.complete or key is None or success is None or latency is None:
            self.skipped += 1
            return False
        self.add(key, latency, success, request.started_us or 0)
        return True

    def add(self, key: RouteKey, latency_us: int, success: bool, seen_us: int = 0) -> None:
        """Counts one request of ``key``."""
        figures = self._routes.get(key)
        if figures is not None:
            figures.add(latency_us, success, seen_us)
            self._routes.move_to_end(key)
            return
        if len(self._routes) >= self.max_routes:
            self._routes.popitem(last=False)
            self.evicted += 1
        self._routes[key] = _Figures(latency_us, success, seen_us)

    def clear(self) -> None:
        """Forgets every route (the counts of evictions and skips stay)."""
        self._routes.clear()

    def snapshot(self, sort_key: str = "count", reverse: bool = True,
                 by: Sequence[str] = DEFAULT_BY) -> tuple[RouteRow, ...]:
        """Immutable rows grouped ``by`` (some of :data:`GROUPS`), sorted by ``sort_key``
        (one of :data:`SORT_KEYS`).

        ``reverse`` puts the largest first (the default, so the busiest route
        leads); ties keep the route's own order, whichever the direction.
        """
        get = SORT_KEYS[sort_key]
        if set(by) >= set(GROUPS):
            rows = [RouteRow(k, f.count, f.successes, f.best, f.worst, f.last, f.last_seen)
                    for k, f in self._routes.items()]
        else:
            rows = self._grouped(by)
        rows.sort(key=lambda r: r.key)
        rows.sort(key=get, reverse=reverse)
        return tuple(rows)

    def _grouped(self, by: Sequence[str]) -> list[RouteRow]:
        merged: dict[RouteKey, list[int]] = {}
        for key, f in self._routes.items():
            k = key.grouped(by)
            m = merged.get(k)
            if m is None:
                merged[k] = [f.count, f.successes, f.best, f.worst, f.last, f.last_seen]
                continue
            m[0] += f.count
            m[1] += f.successes
            m[2] = min(m[2], f.best)
            m[3] = max(m[3], f.worst)
            if f.last_seen >= m[5]:  # the last latency is the latest request's
                m[4], m[5] = f.last, f.last_seen
        return [RouteRow(k, *m) for k, m in merged.items()]
