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
step for the last ``fine_s`` seconds, and 10-second, 1-minute and 5-minute
blocks for the whole horizon. A query takes the coarsest blocks that fit wholly inside the
window and the finer ones at its edge, so a 15-minute window costs a few dozen
block merges, not 900. Beyond ``fine_s`` the oldest edge snaps outward to a
10-second boundary; ``span_s`` says what was covered. Steps reach the coarser
levels in :meth:`SourceWindows.roll_up` (queries call it first; a scraper calls
it after its tick, off the critical path). A complete block holds each group as
one packed string of bytes: no Python object per bucket, nothing for the garbage
collector to walk.

Speed: a series handed in as the very same object as last time is skipped
unread, and with equal counters and an equal ``latency_count`` its buckets are
not compared. Both rest on histograms being cumulative within one run.

This module is pure: it knows nothing of protobuf or gRPC. Series values are
plain integers and bucket lists (see :mod:`meshtui.model.histogram`).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress
from operator import add, sub
from typing import Any, NamedTuple

from meshtui.model.histogram import NUM_BUCKETS, Histogram

#: The counters every series carries, in the order of :attr:`Series.counters`.
FIELDS = (
    "requests",
    "success",
    "failure",
    "tcp_opened",
    "tcp_closed",
    "read_bytes",
    "write_bytes",
    "tls",  # of the responses (success + failure), those over mutual TLS
)
REQUESTS, SUCCESS, FAILURE, TCP_OPENED, TCP_CLOSED, READ_BYTES, WRITE_BYTES, TLS = range(
    len(FIELDS))
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
    #: The histogram's total: with equal counters, an equal total means an
    #: unchanged series, so its buckets need not be compared.
    latency_count: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape of a source returned, keyed by series identity."""

    run_id: str
    time_s: float
    series: Mapping[Any, Series]
    start_time_s: float | None = None  # when the source's current run began


class _Agg:
    """Deltas of one group over a block still being filled: counters, latency, its sum.

    A block that is complete packs each of these into bytes (see :func:`_pack`):
    no Python object per bucket, and nothing for the garbage collector to walk,
    whatever the history holds.
    """

    __slots__ = ("counters", "hist", "sum_us")

    def __init__(self) -> None:
        self.counters = [0] * _NF
        self.hist: dict[int, int] = {}
        self.sum_us = 0.0


#: A complete block's group: ``[*counters, round(sum_us), *latency]``, where the
#: latency is either ``bucket, count`` pairs or, when the buckets crowd together,
#: ``-1 - first_bucket`` followed by the counts of consecutive buckets (which adds
#: into a dense accumulator with one slice operation). Kept as the bytes of an
#: ``array('q')``: bytes are not tracked by the garbage collector (arrays are),
#: so a long history costs collections nothing; readers view them with
#: ``memoryview(x).cast("q")``.
Packed = bytes
_NF = len(FIELDS)
_SUM = _NF
_PAIRS = _NF + 1


def _pack(agg: _Agg) -> Packed:
    out = array("q", agg.counters)
    out.append(round(agg.sum_us))
    h = agg.hist
    if h:
        keys = sorted(h)
        lo, hi = keys[0], keys[-1]
        if hi - lo + 1 <= 2 * len(keys):  # never larger than the pairs
            out.append(-1 - lo)
            out.extend(h.get(k, 0) for k in range(lo, hi + 1))
        else:
            out.extend(chain.from_iterable((k, h[k]) for k in keys))
    return out.tobytes()


def _view(x: Packed) -> memoryview:
    return memoryview(x).cast("q")


def _latency_pairs(x: memoryview) -> Iterable[tuple[int, int]]:
    if len(x) <= _PAIRS:
        return ()
    first = x[_PAIRS]
    if first < 0:
        return ((k, n) for k, n in enumerate(x[_PAIRS + 1 :], -1 - first) if n)
    return zip(x[_PAIRS::2], x[_PAIRS + 1 :: 2], strict=True)


def _add_latency(dense: list[int], x: memoryview) -> None:
    """Adds a packed group's latency counts (viewed) into a dense accumulator."""
    if len(x) <= _PAIRS:
        return
    first = x[_PAIRS]
    if first < 0:
        lo = -1 - first
        run = x[_PAIRS + 1 :]
        hi = lo + len(run)
        dense[lo:hi] = map(add, dense[lo:hi], run)
        hi -= 1
    else:
        idx = x[_PAIRS::2]
        for i, n in zip(idx, x[_PAIRS + 1 :: 2], strict=True):
            dense[i] += n
        lo, hi = idx[0], idx[-1]
    if lo < dense[_LO]:
        dense[_LO] = lo
    if hi > dense[_HI]:
        dense[_HI] = hi


def _unpack(x: _Agg | Packed) -> tuple[Sequence[int], Iterable[tuple[int, int]], float]:
    """(counters, (bucket, count) pairs, latency sum) of either form."""
    if isinstance(x, _Agg):
        return x.counters, x.hist.items(), x.sum_us
    v = _view(x)
    return v[:_NF], _latency_pairs(v), float(v[_SUM])


def _merge_into(agg: _Agg, x: _Agg | Packed) -> None:
    counters, pairs, sum_us = _unpack(x)
    agg.counters = list(map(add, agg.counters, counters))
    h = agg.hist
    for i, n in pairs:
        h[i] = h.get(i, 0) + n
    agg.sum_us += sum_us


def _key(b: _Block) -> int:
    return b.key


def _end(b: _Block) -> float:
    return b.end


_LO, _HI = NUM_BUCKETS, NUM_BUCKETS + 1  # where a dense accumulator keeps its used range


def dense_latency() -> list[int]:
    """An empty latency accumulator: one count per histogram bucket, then the
    lowest and highest bucket used (so reading it back scans only those)."""
    out = [0] * (NUM_BUCKETS + 2)
    out[_LO], out[_HI] = NUM_BUCKETS, -1
    return out


def histogram_of(dense: list[int], sum_us: float = 0.0) -> Histogram:
    """The histogram a dense accumulator holds."""
    lo, hi = dense[_LO], dense[_HI] + 1
    used = dense[lo:hi]
    counts = dict(zip(compress(range(lo, hi), used), filter(None, used), strict=True))
    return Histogram(counts, sum(counts.values()), sum_us)


class _Block:
    """Deltas of every group over a run of consecutive steps."""

    __slots__ = ("end", "first_end", "groups", "key", "start")

    def __init__(self, key: int, start: float, end: float) -> None:
        self.key = key
        self.start = start  # the earliest included step's start
        self.end = end  # the latest included step's end
        self.first_end = end  # the earliest included step's end
        self.groups: dict[Hashable, _Agg | Packed] = {}

    def absorb(self, step: _Block) -> None:
        self.end = step.end
        groups = self.groups
        for g, x in step.groups.items():
            mine = groups.get(g)
            if mine is None:
                mine = groups[g] = _Agg()
            assert type(mine) is _Agg
            _merge_into(mine, x)

    def close(self) -> None:
        groups = self.groups
        for g, x in groups.items():
            if type(x) is _Agg:
                groups[g] = _pack(x)


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
    def all_tls(self) -> bool:
        """Whether every response went over mutual TLS; False when there were none
        (no claim), as an edge with no requests has no SECURED."""
        n = self.counters[SUCCESS] + self.counters[FAILURE]
        return n > 0 and self.counters[TLS] == n

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
    if cur.latency_count == prev.latency_count and (
        cur.latency_count or not cur.latency_indexes
    ):
        return dc, (), 0.0
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
            inside 10-second, 1-minute and 5-minute blocks.
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
            _Level(300.0, horizon_s + 300.0),
        ]
        self._prev: Snapshot | None = None
        self._pending: list[_Block] = []  # steps the coarser levels have not taken yet
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
        no_prev: dict = {}
        old_get = (old if old is not None else no_prev).get
        for key, s in snap.series.items():
            p = old_get(key)
            if p is s:  # the caller saw it unchanged and handed the same object back
                continue
            g, cur_c, _, ci, cc, cur_sum, cur_n = s
            counters: Sequence[int]
            pairs: Iterable[tuple[int, int]] = ()
            sum_us = 0.0
            # The common case inline: same run, no reset, the same bucket list.
            if p is not None:
                _, prev_c, _, pi, pc, prev_sum, prev_n = p
                counters = tuple(map(sub, cur_c, prev_c))
                if min(counters) < 0:
                    counters, pairs, sum_us = _series_delta(s, p)
                elif cur_n != prev_n or not cur_n:
                    if ci is pi or ci == pi:
                        diffs = list(map(sub, cc, pc))
                        if diffs and min(diffs) < 0:
                            counters, pairs, sum_us = _series_delta(s, p)
                        else:
                            pairs = zip(compress(ci, diffs), compress(diffs, diffs), strict=True)
                            sum_us = cur_sum - prev_sum if cur_sum > prev_sum else 0.0
                    else:
                        counters, pairs, sum_us = _series_delta(s, p)
                if counters is cur_c and any(cur_c):
                    self.resets += 1
            else:
                counters, pairs, sum_us = _series_delta(s, p)
            if not any(counters) and not sum_us and not pairs:
                continue
            agg = groups.get(g)
            if agg is None:
                agg = groups[g] = _Agg()
            assert type(agg) is _Agg
            if any(counters):
                agg.counters = list(map(add, agg.counters, counters))
            h = agg.hist
            for i, n in pairs:
                h[i] = h.get(i, 0) + n
            agg.sum_us += sum_us
        # Drop groups whose deltas were all zero (e.g. only empty histograms).
        for g in [g for g, a in groups.items()
                  if type(a) is _Agg and not any(a.counters) and not a.hist]:
            del groups[g]
        self._append(step)
        return True

    def _append(self, step: _Block) -> None:
        """Adds a step to the step level; the coarser levels take it in :meth:`roll_up`."""
        end = step.end
        for g in step.groups:
            self._groups_seen[g] = end
        level = self._levels[0]
        blocks = level.blocks
        if blocks.maxlen is not None and len(blocks) == blocks.maxlen:
            level.dropped = True
            if blocks[0] in self._pending:  # about to fall off unrolled: roll it up now
                self.roll_up()
        blocks.append(step)
        self._pending.append(step)
        while blocks and blocks[0].end < end - level.keep_s:
            blocks.popleft()
            level.dropped = True
        horizon = end - self.horizon_s - 60.0
        if len(self._groups_seen) > 64 and step.key % 64 == 0:
            for g in [g for g, t in self._groups_seen.items() if t < horizon]:
                del self._groups_seen[g]

    def roll_up(self) -> None:
        """Folds the steps taken since the last call into the coarser blocks
        and packs them. Queries call it first, so it is never missed; a caller
        with a latency budget (the scraper) calls it after its tick, off the
        critical path."""
        pending, self._pending = self._pending, []
        for step in pending:
            end = step.end
            for level in self._levels[1:]:
                blocks = level.blocks
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
            step.close()

    def _blocks_before(self, cutoff: float, until: float) -> Iterator[_Block]:
        """For a window that ended before the newest step: its single steps while they
        reach back that far; else the 10-second blocks that ended by ``until``, then
        the single steps after the newest of them.

        :meth:`_blocks` walks down from the newest data, so a coarse block running
        past ``until`` would be left out whole, and the window with it. The
        10-second level holds the whole horizon: at most ninety blocks to merge.
        """
        newest = -math.inf
        # Single steps where they still reach back to the cutoff: the window exactly.
        tens = [] if self._levels[0].covers(cutoff) else self._levels[1].blocks
        for block in reversed(tens):
            if block.end > until:
                continue
            if block.end <= cutoff:
                break
            newest = max(newest, block.end)
            yield block
        for step in reversed(self._levels[0].blocks):
            if step.end > until:
                continue
            if step.end <= max(newest, cutoff):
                break
            yield step

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
            blocks = level.blocks
            finer_covers = n > 0 and levels[n - 1].covers(cutoff)
            bs = level.block_s
            # Start below what coarser levels took, without walking past it.
            if upper == math.inf:
                i = len(blocks)
            elif bs:
                i = bisect_left(blocks, upper / bs, key=_key)
            else:
                i = bisect_left(blocks, upper, key=_end)
            while i > 0:
                i -= 1
                block = blocks[i]
                if bs:
                    lo = block.key * bs
                    if lo > cutoff or (block.end > cutoff and not finer_covers):
                        yield block
                        upper = lo
                        if lo <= cutoff:
                            return
                        continue
                    break
                if block.end <= cutoff:
                    return
                yield block
            if n > 0 and not finer_covers:
                return

    def totals(
        self,
        now: float,
        window_s: float,
        match: Callable[[Any], bool] | None = None,
        latency: list[int] | None = None,
    ) -> WindowTotals:
        """Sums over the steps that ended within ``(now - window_s, now]``.

        ``match`` picks groups (None: all). Open connections are the latest
        gauge of the matching groups. With ``latency`` (an accumulator from
        :func:`dense_latency`), bucket counts are
        added into it instead of into the result's histogram: a caller summing
        many sources merges each bucket once.
        """
        self.roll_up()
        out = WindowTotals()
        wanted = [g for g in self.groups() if match is None or match(g)]
        for g in wanted:
            out.open_connections += self.gauges.get(g, 0)
        start, end = math.inf, -math.inf
        dense = dense_latency() if latency is None else latency
        c = [0] * _NF
        sum_us = 0.0
        fine = self._levels[0].blocks
        ended_earlier = bool(fine) and now < fine[-1].end
        blocks = (self._blocks_before(now - window_s, now) if ended_earlier
                  else self._blocks(now - window_s))
        for block in blocks:
            if block.end > now:
                continue
            start = min(start, block.start)
            end = max(end, block.end)
            groups = block.groups
            for g in wanted:
                x = groups.get(g)
                if x is None:
                    continue
                if isinstance(x, _Agg):
                    c = list(map(add, c, x.counters))
                    h = x.hist
                    if h:
                        for i, n in h.items():
                            dense[i] += n
                        dense[_LO] = min(dense[_LO], min(h))
                        dense[_HI] = max(dense[_HI], max(h))
                    sum_us += x.sum_us
                else:
                    v = _view(x)
                    c = list(map(add, c, v[:_NF]))
                    _add_latency(dense, v)
                    sum_us += v[_SUM]
        out.counters = c
        out.latency.sum_us = sum_us
        if latency is None:
            out.latency = histogram_of(dense, sum_us)
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
        self.roll_up()
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
            for g, x in block.groups.items():
                if g not in wanted:
                    continue
                counters, pairs, sum_us = _unpack(x)
                t.counters = list(map(add, t.counters, counters))
                h = t.latency.counts
                for i, n in pairs:
                    h[i] = h.get(i, 0) + n
                t.latency.sum_us += sum_us
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
