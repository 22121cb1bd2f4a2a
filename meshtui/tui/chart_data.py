"""What the dashboard's charts draw, worked out without any widget.

Series over the last minutes become (seconds before now, value) points;
axes get a few round ticks labelled with their unit; a window's merged
latency histogram is regrouped into a handful of 1-2-5 bins that a bar chart
can show (its own buckets are about 2 % wide: thousands of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshtui.client.queries import HistoryPoint
from meshtui.model.histogram import Histogram, bucket_upper
from meshtui.model.units import format_latency_ms, format_window

Point = tuple[float, float]  # (seconds relative to now, <= 0; value)

#: The spans `z` steps through, as far as the source holds them.
SPANS_S = (15 * 60, 3600, 6 * 3600)
#: Points a chart is drawn from: about two a braille cell across a pane.
CHART_POINTS = 90


@dataclass(frozen=True)
class ChartRange:
    """What the time charts cover: ``span_s`` up to ``until`` (None: up to now)."""

    span_s: int = SPANS_S[0]
    until: float | None = None

    @property
    def step_s(self) -> int:
        """Whole tens of seconds, so that a chart holds about CHART_POINTS points
        (10 s over 15 minutes, 240 s over 6 hours)."""
        return max(10, math.ceil(self.span_s / CHART_POINTS / 10) * 10)

    def zoomed(self, held_s: int) -> ChartRange:
        """The next longer span the source holds, back to the shortest after the longest."""
        spans = [s for s in SPANS_S if s <= held_s] or [SPANS_S[0]]
        longer = [s for s in spans if s > self.span_s]
        return ChartRange(longer[0] if longer else spans[0], self.until)

    def describe(self) -> str:
        span = format_window(self.span_s)
        if self.until is None:
            return f"last {span}"
        import time

        return f"{span} to {time.strftime('%Y-%m-%d %H:%M', time.localtime(self.until))}"


@dataclass(frozen=True)
class Series:
    """One line of a chart."""

    label: str
    points: tuple[Point, ...]
    color: tuple[int, int, int]  # RGB

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


def series_of(points: Sequence[HistoryPoint], attr: str, now: float, span_s: float,
              scale: float = 1.0) -> tuple[Point, ...]:
    """One attribute of history points as chart points within the span; gaps left out."""
    out = []
    for p in points:
        v = getattr(p, attr)
        x = p.at - now
        if v is None or math.isnan(v) or x < -span_s:
            continue
        out.append((min(x, 0.0), v * scale))
    return tuple(out)


def nice_step(span: float, ticks: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def value_ticks(lo: float, hi: float, ticks: int = 4) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo, ticks)
    first = math.floor(lo / step) * step
    out = []
    v = first
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def y_range(series: Iterable[Series], *, floor: float | None = 0.0,
            ceiling: float | None = None, minimum_span: float = 1.0) -> tuple[float, float]:
    """The y-axis bounds: the data's, padded, clamped to ``floor``/``ceiling``."""
    values = [v for s in series for _, v in s.points]
    if not values:
        lo, hi = (floor or 0.0), (floor or 0.0) + minimum_span
    else:
        lo, hi = min(values), max(values)
        pad = max((hi - lo) * 0.1, minimum_span / 10)
        lo, hi = lo - pad, hi + pad
        if hi - lo < minimum_span:
            mid = (hi + lo) / 2
            lo, hi = mid - minimum_span / 2, mid + minimum_span / 2
    if floor is not None:
        lo = max(lo, floor) if values else floor
    if ceiling is not None:
        hi = min(hi, ceiling)
        lo = min(lo, hi - minimum_span)
    return lo, hi


def time_ticks(span_s: float, ticks: int = 4) -> list[tuple[float, str]]:
    """X-axis ticks over the last ``span_s`` seconds: ``-15m`` … ``now``."""
    step = max(span_s / ticks, 1.0)
    out = []
    for k in range(ticks, -1, -1):
        x = -k * step
        out.append((x, "now" if k == 0 else "-" + format_window(k * step)))
    return out


# ---- the latency distribution ------------------------------------------------

# Bin edges in milliseconds: 1-2-5 steps from 0.1 ms to 100 s.
EDGES_MS = [m * 10.0**e for e in range(-1, 5) for m in (1, 2, 5)] + [100_000.0]


@dataclass(frozen=True)
class Bin:
    """Requests whose latency is above the previous edge and at most ``upper_ms``."""

    upper_ms: float
    count: int

    @property
    def label(self) -> str:
        return "≤" + format_latency_ms(self.upper_ms)


def latency_bins(hist: Histogram | None, edges_ms: Sequence[float] = EDGES_MS) -> list[Bin]:
    """The histogram's requests in 1-2-5 bins, from the first bin holding any to the last.

    A bucket goes to the bin that holds its upper bound: buckets are far
    narrower (about 2 %) than bins, so at most one bucket per edge straddles.
    """
    if hist is None or hist.count == 0:
        return []
    counts = [0] * len(edges_ms)
    for index, c in hist.nonzero():
        upper = bucket_upper(index) / 1000
        i = next((k for k, e in enumerate(edges_ms) if upper <= e * 1.0001), len(edges_ms) - 1)
        counts[i] += c
    used = [i for i, c in enumerate(counts) if c]
    first, last = used[0], used[-1]
    return [Bin(edges_ms[i], counts[i]) for i in range(first, last + 1)]


def quantile_bin(bins: Sequence[Bin], value_ms: float | None) -> int | None:
    """Index of the bin a latency falls in (to mark p50/p95/p99 on the bars)."""
    if value_ms is None or not bins:
        return None
    for i, b in enumerate(bins):
        if value_ms <= b.upper_ms * 1.0001:
            return i
    return len(bins) - 1

