"""Windowed rates from the cumulative snapshots one source (a proxy) reports.

A proxy reports cumulative counters and latency histograms; the controller
scrapes it once a second and asks questions such as "requests per second,
success rate and p99 over the last minute, for the series whose destination is
deployment X". :class:`SourceWindows` turns successive snapshots into per-step
deltas, keeps them for the history's horizon, and answers those questions for
any window from a few seconds up to the horizon.

How the awkward cases are handled:

* **First sight.** The first snapshot of a source is a baseline: what it holds
  happened at unknown times, so it is attributed to no step — unless the source
  says when it started and that was at most ``max_first_s`` ago, in which case
  everything it holds is one step from its start to now.
* **Resets.** A new ``run_id`` means the source restarted and every counter began
  again from zero, so everything the new snapshot holds is new: one step from the
  later of the previous snapshot and the new run's start. Within one run, a
  series whose counter went down, or whose histogram is no longer a superset of
  the previous one, is treated the same way for that series alone. A delta is
  therefore never negative, and nothing counted before the reset is counted
  again. What the old run recorded after its last snapshot is lost — no scrape
  ever saw it — and nothing pretends otherwise.
* **Gaps.** Counters are cumulative, so a missed scrape loses nothing: the next
  snapshot's delta covers the whole gap and its step spans it. Rates divide by
  the time the included steps actually cover (``span_s``), so a step that began
  before the window is averaged over its true length, never squeezed into the
  window. A series missing from a snapshot is forgotten; if it comes back, all of
  it is new (the source re-created it after the snapshot that lacked it).
* **Time going backwards** (a snapshot not newer than the last): ignored.

Memory is bounded by keeping deltas, not snapshots, at three resolutions: every
step for the last ``fine_s`` seconds, and 10-second and 60-second blocks for the
whole horizon. A query takes the coarsest blocks that fit wholly inside the
window and the finer ones at its edge, so a 15-minute window costs a few dozen
block merges, not 900. Beyond ``fine_s`` the oldest edge snaps outward to a
10-second boundary; ``span_s`` says what was covered. Closed blocks hold their
histograms as two compact arrays.

This module is pure: it knows nothing of protobuf or gRPC. Series values are
plain integers and bucket lists (see :mod:`meshtui.model.histogram`).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import sub
from typing import Any, NamedTuple

from meshtui.model.histogram import Histogram

#: The counters every series carries, in the order of :attr:`Series.counters`.
FIELDS = (
    "requests",
    "success",
    "failure",
    "tcp_opened",
    "tcp_closed",
    "read_bytes",
    "write_bytes",
)
REQUESTS, SUCCESS, FAILURE, TCP_OPENED, TCP_CLOSED, READ_BYTES, WRITE_BYTES = range(len(FIELDS))
_ZERO = (0,) * len(FIELDS)


class Series(NamedTuple):
    """One series' cumulative values in one snapshot (a tuple: the controller
    builds thousands of them a second).

    ``group`` is what queries select on (for the controller: direction and
    destination workload); several series may share a group and are summed.
    ``open_connections`` is a gauge, not a counter: only its latest value counts.
    """

    group: Hashable
    counters: tuple[int, ...] = _ZERO
    open_connections: int = 0
    latency_indexes: Sequence[int] = ()
    latency_counts: Sequence[int] = ()
    latency_sum_us: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape of a source returned, keyed by series identity."""

    run_id: str
    time_s: float
    series: Mapping[Any, Series]
    start_time_s: float | None = None  # when the source's current run began


class _Agg:
    """Deltas of one group over one block: counters, latency, and its sum."""

    __slots__ = ("counters", "hist", "sum_us")

    def __init__(self) -> None:
        self.counters = [0] * len(FIELDS)
        self.hist: dict[int, int] | tuple[array, array] = {}
        self.sum_us = 0.0

    def add(self, counters: Iterable[int], hist: Iterable[tuple[int, int]], sum_us: float) -> None:
        c = self.counters
        for k, v in enumerate(counters):
            if v:
                c[k] += v
        h = self.hist
        assert isinstance(h, dict)
        for i, n in hist:
            h[i] = h.get(i, 0) + n
        self.sum_us += sum_us

    def hist_items(self) -> Iterable[tuple[int, int]]:
        h = self.hist
        return h.items() if isinstance(h, dict) else zip(h[0], h[1], strict=True)

    def close(self) -> None:
        """Packs the histogram into two arrays: a block that is complete never grows."""
        h = self.hist
        if isinstance(h, dict):
            self.hist = (array("H", h.keys()), array("Q", h.values()))


class _Block:
    """Deltas of every group over a run of consecutive steps."""

    __slots__ = ("end", "first_end", "groups", "key", "start")

    def __init__(self, key: int, start: float, end: float) -> None:
        self.key = key
        self.start = start  # the earliest included step's start
        self.end = end  # the latest included step's end
        self.first_end = end  # the earliest included step's end
        self.groups: dict[Hashable, _Agg] = {}

    def absorb(self, step: _Block) -> None:
        self.end = step.end
        for g, agg in step.groups.items():
            mine = self.groups.get(g)
            if mine is None:
                mine = self.groups[g] = _Agg()
            mine.add(agg.counters, agg.hist_items(), agg.sum_us)

    def close(self) -> None:
        for agg in self.groups.values():
            agg.close()


@dataclass(slots=True)
class _Level:
    block_s: float  # 0: one block per step
    keep_s: float
    blocks: deque[_Block] = field(default_factory=deque)
    dropped: bool = False  # has it ever let go of a block?

    def covers(self, cutoff: float) -> bool:
        """Whether this level still holds every step that ended after ``cutoff``."""
        return not self.dropped or (bool(self.blocks) and self.blocks[0].first_end <= cutoff)


@dataclass(slots=True)
class WindowTotals:
    """What a set of series recorded over a window, summed over sources.

    Rates are per source (its counts over the span its steps cover) and then
    summed, so a pod that started mid-window is not diluted by the others' span.
    """

    counters: list[int] = field(default_factory=lambda: [0] * len(FIELDS))
    latency: Histogram = field(default_factory=Histogram)
    open_connections: int = 0
    span_s: float = 0.0  # the longest span any source covered
    start_s: float = math.inf  # earliest covered time (start of the oldest step)
    end_s: float = -math.inf  # latest covered time
    request_rate: float = 0.0
    read_rate: float = 0.0
    write_rate: float = 0.0

    @property
    def success_count(self) -> int:
        return self.counters[SUCCESS]

    @property
    def failure_count(self) -> int:
        return self.counters[FAILURE]

    @property
    def has_traffic(self) -> bool:
        return any(self.counters) or self.open_connections > 0

    @property
    def success_rate(self) -> float | None:
        """Successes over responses; None when there were none."""
        n = self.counters[SUCCESS] + self.counters[FAILURE]
        return self.counters[SUCCESS] / n if n else None

    def latency_ms(self, qs: Sequence[float] = (0.5, 0.95, 0.99)) -> list[float | None]:
        """Quantiles of the merged latency histogram, in milliseconds."""
        return [None if v is None else v / 1000.0 for v in self.latency.quantiles(qs)]

    def merge(self, other: WindowTotals) -> None:
        """Adds another source's (or group's) totals."""
        for k, v in enumerate(other.counters):
            self.counters[k] += v
        self.latency.merge(other.latency)
        self.open_connections += other.open_connections
        self.span_s = max(self.span_s, other.span_s)
        self.start_s = min(self.start_s, other.start_s)
        self.end_s = max(self.end_s, other.end_s)
        self.request_rate += other.request_rate
        self.read_rate += other.read_rate
        self.write_rate += other.write_rate


def _series_delta(
    cur: Series, prev: Series | None
) -> tuple[Sequence[int], Iterable[tuple[int, int]], float]:
    """What ``cur`` gained since ``prev``: counters, histogram buckets, latency sum.

    Any sign of a reset (a counter down, a bucket down or gone) makes the
    whole of ``cur`` the delta.
    """
    ci, cc = cur.latency_indexes, cur.latency_counts
    if prev is None:
        return cur.counters, zip(ci, cc, strict=True), cur.latency_sum_us
    dc = tuple(map(sub, cur.counters, prev.counters))
    if min(dc) < 0:
        return cur.counters, zip(ci, cc, strict=True), cur.latency_sum_us
    pi, pc = prev.latency_indexes, prev.latency_counts
    if cc == pc and ci == pi:
        return dc, (), 0.0
    if ci == pi:  # the usual case: no new bucket, so compare position by position
        diffs = list(map(sub, cc, pc))
        if min(diffs) < 0:
            return cur.counters, zip(ci, cc, strict=True), cur.latency_sum_us
        pairs: Iterable[tuple[int, int]] = zip(
            compress(ci, diffs), compress(diffs, diffs), strict=True
        )
    else:
        old = dict(zip(pi, pc, strict=True))
        d: dict[int, int] = {}
        for i, n in zip(ci, cc, strict=True):
            k = n - old.get(i, 0)
            if k < 0:
                return cur.counters, zip(ci, cc, strict=True), cur.latency_sum_us
            if k:
                d[i] = k
        if sum(d.values()) != sum(cc) - sum(pc):  # a bucket of prev vanished
            return cur.counters, zip(ci, cc, strict=True), cur.latency_sum_us
        pairs = d.items()
    return dc, pairs, max(cur.latency_sum_us - prev.latency_sum_us, 0.0)


class SourceWindows:
    """The history of one source, and windowed totals over it.

    Args:
        horizon_s: how far back queries can reach (15 minutes).
        fine_s: how long every single step is kept; older ones live on only
            inside 10- and 60-second blocks.
        max_first_s: how recently a source must have started for its first
            snapshot to count (see the module docstring).
    """

    def __init__(
        self, *, horizon_s: float = 900.0, fine_s: float = 120.0, max_first_s: float = 10.0
    ) -> None:
        self.horizon_s = horizon_s
        self.max_first_s = max_first_s
        # Finest first. The step level is also capped by count, in case a caller
        # observes far more often than once a second.
        self._levels = [
            _Level(0.0, fine_s, deque(maxlen=max(16, int(fine_s * 4)))),
            _Level(10.0, horizon_s + 10.0),
            _Level(60.0, horizon_s + 60.0),
        ]
        self._prev: Snapshot | None = None
        self._seq = 0
        self._groups_seen: dict[Hashable, float] = {}  # group → last step end it appeared in
        self.gauges: dict[Hashable, int] = {}  # group → open connections at the last snapshot
        self.resets = 0  # restarts and per-series resets seen, for diagnostics

    @property
    def last_time(self) -> float | None:
        return None if self._prev is None else self._prev.time_s

    @property
    def run_id(self) -> str | None:
        return None if self._prev is None else self._prev.run_id

    def groups(self) -> Iterable[Hashable]:
        """Every group with traffic within the horizon, or an open connection now."""
        return self._groups_seen.keys() | self.gauges.keys()

    def observe(self, snap: Snapshot) -> bool:
        """Takes a new snapshot; returns whether it added a step to the history."""
        prev = self._prev
        if prev is not None and snap.time_s <= prev.time_s:
            return False
        self._prev = snap
        gauges: dict[Hashable, int] = {}
        for s in snap.series.values():
            if s.open_connections:
                gauges[s.group] = gauges.get(s.group, 0) + s.open_connections
        self.gauges = gauges

        started = snap.start_time_s
        if prev is None:
            if started is None or not snap.time_s - self.max_first_s <= started <= snap.time_s:
                return False  # a baseline: its counts happened at unknown times
            start, old = started, None
        elif prev.run_id != snap.run_id:
            self.resets += 1
            start = prev.time_s if started is None else min(max(prev.time_s, started), snap.time_s)
            old = None
        else:
            start, old = prev.time_s, prev.series

        step = _Block(self._seq, start, snap.time_s)
        self._seq += 1
        groups = step.groups
        for key, s in snap.series.items():
            p = None if old is None else old.get(key)
            counters, pairs, sum_us = _series_delta(s, p)
            if p is not None and counters is s.counters and any(s.counters):
                self.resets += 1
            if not any(counters) and not sum_us and not pairs:
                continue
            agg = groups.get(s.group)
            if agg is None:
                agg = groups[s.group] = _Agg()
            agg.add(counters, pairs, sum_us)
        # Drop groups whose deltas were all zero (e.g. only empty histograms).
        for g in [g for g, a in groups.items() if not any(a.counters) and not a.hist]:
            del groups[g]
        step.close()
        self._append(step)
        return True

    def _append(self, step: _Block) -> None:
        end = step.end
        for g in step.groups:
            self._groups_seen[g] = end
        for level in self._levels:
            blocks = level.blocks
            if not level.block_s:
                if blocks.maxlen is not None and len(blocks) == blocks.maxlen:
                    level.dropped = True
                blocks.append(step)
            else:
                key = math.floor(end / level.block_s)
                if blocks and blocks[-1].key == key:
                    blocks[-1].absorb(step)
                else:
                    if blocks:
                        blocks[-1].close()
                    block = _Block(key, step.start, end)
                    block.absorb(step)
                    blocks.append(block)
            while blocks and blocks[0].end < end - level.keep_s:
                blocks.popleft()
                level.dropped = True
        horizon = end - self.horizon_s - 60.0
        if len(self._groups_seen) > 64 and step.key % 64 == 0:
            for g in [g for g, t in self._groups_seen.items() if t < horizon]:
                del self._groups_seen[g]

    def _blocks(self, cutoff: float) -> Iterator[_Block]:
        """Disjoint blocks holding every step that ended after ``cutoff``.

        Coarse blocks wholly after the cutoff first, finer ones at the edge; when
        the finer level no longer reaches back to the cutoff, the coarse block
        straddling it is taken whole (the window snaps outward).
        """
        upper = math.inf  # steps ending at or after this are already covered
        levels = self._levels
        for n in range(len(levels) - 1, -1, -1):
            level = levels[n]
            finer_covers = n > 0 and levels[n - 1].covers(cutoff)
            for block in reversed(level.blocks):
                if level.block_s:
                    lo = block.key * level.block_s
                    hi = lo + level.block_s
                    if hi > upper:
                        continue
                    if lo > cutoff or (block.end > cutoff and not finer_covers):
                        yield block
                        upper = min(upper, lo)
                        if lo <= cutoff:
                            return
                        continue
                    break
                if block.end <= cutoff:
                    return
                if block.end < upper:
                    yield block
            if n > 0 and not finer_covers:
                return

    def totals(
        self,
        now: float,
        window_s: float,
        match: Callable[[Any], bool] | None = None,
    ) -> WindowTotals:
        """Sums over the steps that ended within ``(now - window_s, now]``.

        ``match`` picks groups (None: all). Open connections are the latest
        gauge of the matching groups.
        """
        out = WindowTotals()
        wanted = [g for g in self.groups() if match is None or match(g)]
        for g in wanted:
            out.open_connections += self.gauges.get(g, 0)
        start, end = math.inf, -math.inf
        hist = out.latency.counts
        c = out.counters
        sum_us = 0.0
        for block in self._blocks(now - window_s):
            if block.end > now:
                continue
            start = min(start, block.start)
            end = max(end, block.end)
            groups = block.groups
            for g in wanted:
                agg = groups.get(g)
                if agg is None:
                    continue
                for k, v in enumerate(agg.counters):
                    if v:
                        c[k] += v
                for i, n in agg.hist_items():
                    hist[i] = hist.get(i, 0) + n
                sum_us += agg.sum_us
        out.latency.count = sum(hist.values())
        out.latency.sum_us = sum_us
        if end > start:
            span = end - start
            out.span_s, out.start_s, out.end_s = span, start, end
            out.request_rate = (c[SUCCESS] + c[FAILURE]) / span
            out.read_rate = c[READ_BYTES] / span
            out.write_rate = c[WRITE_BYTES] / span
        return out

    def points(
        self,
        now: float,
        window_s: float,
        step_s: float,
        match: Callable[[Any], bool] | None = None,
    ) -> tuple[float, list[tuple[float, WindowTotals]]]:
        """Per-step totals over the window, oldest first, for charts.

        Uses the coarsest level whose blocks are no longer than ``step_s`` and
        that reaches back far enough; ``step_s`` is rounded up to a multiple of
        that level's block. Returns the step used and ``(bin end, totals)``
        pairs, one per bin that holds any step.
        """
        cutoff = now - window_s
        level = self._levels[0]
        for lv in self._levels[1:]:
            if lv.block_s <= step_s or not level.covers(cutoff):
                level = lv
        if level.block_s:
            step_s = max(level.block_s, math.ceil(step_s / level.block_s) * level.block_s)
        wanted = {g for g in self.groups() if match is None or match(g)}
        bins: dict[int, WindowTotals] = {}
        for block in level.blocks:
            if block.end <= cutoff or block.end > now:
                continue
            b = math.floor(block.first_end / step_s)
            t = bins.get(b)
            if t is None:
                t = bins[b] = WindowTotals()
            t.start_s = min(t.start_s, block.start)
            t.end_s = max(t.end_s, block.end)
            for g, agg in block.groups.items():
                if g not in wanted:
                    continue
                for k, v in enumerate(agg.counters):
                    t.counters[k] += v
                h = t.latency.counts
                for i, n in agg.hist_items():
                    h[i] = h.get(i, 0) + n
                t.latency.sum_us += agg.sum_us
        out = []
        for b in sorted(bins):
            t = bins[b]
            t.latency.count = sum(t.latency.counts.values())
            span = t.end_s - t.start_s
            if span > 0:
                t.span_s = span
                t.request_rate = (t.counters[SUCCESS] + t.counters[FAILURE]) / span
                t.read_rate = t.counters[READ_BYTES] / span
                t.write_rate = t.counters[WRITE_BYTES] / span
            out.append(((b + 1) * step_s, t))
        return step_s, out
