"""Prometheus's ``histogram_quantile`` over classic buckets, taken locally.

A stat refresh needs p50, p95 and p99 of the same bucket rates. Asked as three
``histogram_quantile`` queries, Prometheus evaluates the rates of every bucket
series three times; asked once for the rates, meshtui takes the three
quantiles here. What it prints must not change, so this follows Prometheus's
own rules for classic buckets step by step, in the same order of float
operations:

- the buckets of one series are those whose labels other than ``le`` (and the
  metric name) are equal; a bucket whose ``le`` is not a number is skipped;
- sorted by upper bound, the highest must be ``+Inf``, else NaN; buckets of the
  same bound are added together;
- counts are made monotonic: a count below the highest so far is raised to it.
  Since Prometheus 2.49, a count within a relative 1e-12 of the previous one
  (float noise from summing rates) is set to it first, in either direction;
- fewer than two buckets, or no observations: NaN;
- the rank ``q * total`` falls in the first bucket whose count reaches it: the
  answer is interpolated linearly between that bucket's lower and upper bound,
  the lowest bucket starting from 0 (or answering its own bound when that is
  0 or below); a rank in the ``+Inf`` bucket answers the highest finite bound;
- q below 0 answers -Inf, above 1 +Inf, NaN answers NaN.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Sequence

#: Prometheus 2.49 and later ignore relative differences below this between
#: neighbouring buckets; earlier ones compare counts exactly (tolerance 0).
SMALL_DELTA_TOLERANCE = 1e-12
SMALL_DELTAS_SINCE = (2, 49)

BUCKET_LABEL = "le"
METRIC_NAME = "__name__"

Bucket = tuple[float, float]  # (upper bound, cumulative count)
Labels = dict[str, str]

_MIN_NORMAL = sys.float_info.min  # the smallest normal double, as Go's comparisons use
# What Go's strconv.ParseFloat reads: decimal (with exponent), hex with a binary
# exponent, Inf/Infinity and NaN in any case; no spaces, no digit separators.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}


def parse_bound(text: str | None) -> float | None:
    """An ``le`` label's upper bound as Prometheus reads it; None when it reads none."""
    if text is None:
        return None
    if (special := _SPECIAL.get(text.lower())) is not None:
        return special
    if _DECIMAL.fullmatch(text):
        bound = float(text)
    elif _HEX.fullmatch(text):
        try:
            bound = float.fromhex(text)
        except OverflowError:
            return None
    else:
        return None
    return bound if math.isfinite(bound) else None  # out of range: Go refuses it


def tolerance_for(version: str | None) -> float:
    """The small-delta tolerance of a Prometheus of this version (``2.42.0+ds``,
    ``v3.1.0``); the current rule when the version cannot be read."""
    m = re.match(r"v?(\d+)\.(\d+)", version or "")
    if m is None:
        return SMALL_DELTA_TOLERANCE
    return SMALL_DELTA_TOLERANCE if (int(m[1]), int(m[2])) >= SMALL_DELTAS_SINCE else 0.0


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    """Go's relative comparison that Prometheus uses for small deltas."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs_sum, sys.float_info.max) < epsilon


def _coalesce(buckets: list[Bucket]) -> list[Bucket]:
    """Sorted buckets with equal bounds added together."""
    out: list[Bucket] = []
    for bound, count in buckets:
        if out and out[-1][0] == bound:
            out[-1] = (bound, out[-1][1] + count)
        else:
            out.append((bound, count))
    return out


def _monotonic(counts: list[float], tolerance: float) -> None:
    """Raises every count to the highest before it, in place; with a tolerance,
    first sets counts within it of the last one kept to that one."""
    if tolerance == 0.0:  # before 2.49: the envelope alone
        highest = counts[0]
        for i in range(1, len(counts)):
            if counts[i] > highest:
                highest = counts[i]
            elif counts[i] < highest:
                counts[i] = highest
        return
    prev = counts[0]
    for i in range(1, len(counts)):
        curr = counts[i]
        if curr == prev:
            continue
        if _almost_equal(prev, curr, tolerance) or curr < prev:
            counts[i] = prev  # noise either way, or a decrease: the last kept stands
            continue
        prev = curr


def bucket_quantile(q: float, buckets: Iterable[Bucket],
                    tolerance: float = SMALL_DELTA_TOLERANCE) -> float:
    """The q-quantile of one series' classic buckets, as ``histogram_quantile``
    answers it (see the module's rules)."""
    if (out := _out_of_range(q)) is not None:
        return out
    return _quantile(q, _prepare(buckets, tolerance))


def _out_of_range(q: float) -> float | None:
    """The answer for a q that needs no buckets (NaN, below 0, above 1); None otherwise."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    return None


def _prepare(buckets: Iterable[Bucket], tolerance: float
             ) -> tuple[list[float], list[float]] | None:
    """(bounds, counts) sorted, coalesced and made monotonic, the same whatever q is;
    None without a +Inf bucket."""
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or ordered[-1][0] != math.inf:
        return None
    ordered = _coalesce(ordered)
    counts = [c for _, c in ordered]
    _monotonic(counts, tolerance)
    return [b for b, _ in ordered], counts


def _quantile(q: float, prepared: tuple[list[float], list[float]] | None) -> float:
    if prepared is None:
        return math.nan
    bounds, counts = prepared
    if len(counts) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = _first_reaching(counts, rank)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * _divide(rank, count)


def _divide(a: float, b: float) -> float:
    """IEEE division, as Go divides: by zero gives NaN (0/0) or an infinity, where
    Python raises (a rank of 0 in an empty lowest bucket, when q is 0)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _first_reaching(counts: Sequence[float], rank: float) -> int:
    """Go's ``sort.Search`` over all buckets but the last: the first whose count is
    at least the rank (a binary search, so that NaN counts behave as there)."""
    lo, hi = 0, len(counts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if not counts[mid] >= rank:
            lo = mid + 1
        else:
            hi = mid
    return lo


def series_quantiles(samples: Iterable[tuple[Labels, float]], qs: Sequence[float],
                     tolerance: float = SMALL_DELTA_TOLERANCE
                     ) -> list[tuple[Labels, tuple[float, ...]]]:
    """``histogram_quantile(q, samples)`` for every q at once: one answer per series
    (the buckets' labels without ``le`` and the metric name), in the order first seen.

    A 500-pod refresh brings some 13,000 buckets: each ``le`` is read once, and the
    labels are put in order once a series rather than once a bucket.
    """
    bounds: dict[str | None, float | None] = {}
    as_given: dict[tuple[tuple[str, str], ...], list[Bucket]] = {}
    for labels, value in samples:
        text = labels.get(BUCKET_LABEL)
        if text in bounds:
            bound = bounds[text]
        else:
            bound = bounds[text] = parse_bound(text)
        if bound is None:
            continue
        key = tuple((k, v) for k, v in labels.items() if k != BUCKET_LABEL and k != METRIC_NAME)
        as_given.setdefault(key, []).append((bound, value))
    series: dict[tuple[tuple[str, str], ...], list[Bucket]] = {}
    for key, buckets in as_given.items():
        series.setdefault(tuple(sorted(key)), []).extend(buckets)
    out = []
    for key, buckets in series.items():
        prepared = _prepare(buckets, tolerance)
        out.append((dict(key), tuple(_quantile(q, prepared) if (early := _out_of_range(q))
                                     is None else early for q in qs)))
    return out
