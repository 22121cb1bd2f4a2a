"""A mergeable latency histogram with log-spaced buckets.

Bucket ``i`` (for ``i >= 1``) holds values in ``(MIN_US * G**(i-1), MIN_US * G**i]``
with ``G = (1 + a) / (1 - a)``; reporting a bucket by ``2 * upper / (1 + G)``
is then within ``a`` of every value in it (the DDSketch bound). Bucket 0 holds
everything at or below ``MIN_US``. Counts are integers, so merge and subtract
are exact, associative and commutative, and there are never more than
``NUM_BUCKETS`` of them whatever is recorded. Values are microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

RELATIVE_ACCURACY = 0.009  # a little under the promised 1 %, for float slack
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_US = 0.5  # below this everything is "0.5 µs or less"
MAX_US = 4 * 3600 * 1e6  # four hours; larger values land in the last bucket
NUM_BUCKETS = math.ceil(math.log(MAX_US / MIN_US) / _LOG_GAMMA) + 1


def bucket_index(value_us: float) -> int:
    """Returns the bucket a value falls in."""
    if not value_us > MIN_US:  # also catches NaN and negatives
        return 0
    if value_us >= MAX_US:  # also catches infinity, which log() cannot bucket
        return NUM_BUCKETS - 1
    i = math.ceil(math.log(value_us / MIN_US) / _LOG_GAMMA)
    # log() can land a hair on either side of an exact bucket bound.
    if i > 0 and value_us <= MIN_US * GAMMA ** (i - 1):
        i -= 1
    elif value_us > MIN_US * GAMMA**i:
        i += 1
    return min(max(i, 1), NUM_BUCKETS - 1)


def bucket_value(index: int) -> float:
    """The representative value of a bucket (within the relative accuracy)."""
    if index <= 0:
        return MIN_US
    return 2 * MIN_US * GAMMA**index / (1 + GAMMA)


def bucket_upper(index: int) -> float:
    """The inclusive upper bound of a bucket."""
    return MIN_US * GAMMA ** max(index, 0)


@dataclass(slots=True)
class Histogram:
    """Counts of latencies in fixed log-spaced buckets.

    ``counts`` maps bucket index to count and holds only non-empty buckets:
    real latencies crowd into a few dozen buckets, so merging the thousands
    of series a controller holds stays cheap. It can never hold more than
    ``NUM_BUCKETS`` entries, so memory is bounded whatever is recorded.
    """

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    sum_us: float = 0.0

    def record(self, value_us: float, n: int = 1) -> None:
        """Adds ``n`` observations of ``value_us``.

        Values outside ``[0, MAX_US]`` (and NaN, as 0) count as the nearest
        bound, in the sum as in the buckets, so one bad reading cannot turn
        the sum into NaN or infinity for good.
        """
        i = bucket_index(value_us)
        self.counts[i] = self.counts.get(i, 0) + n
        self.count += n
        if not 0.0 <= value_us <= MAX_US:
            value_us = MAX_US if value_us > MAX_US else 0.0
        self.sum_us += value_us * n

    def merge(self, other: Histogram) -> None:
        """Adds every observation of ``other`` into this histogram."""
        mine = self.counts
        for i, c in other.counts.items():
            mine[i] = mine.get(i, 0) + c
        self.count += other.count
        self.sum_us += other.sum_us

    def merged(self, other: Histogram) -> Histogram:
        """A new histogram holding both."""
        out = self.copy()
        out.merge(other)
        return out

    def subtract(self, earlier: Histogram) -> Histogram:
        """The observations recorded since ``earlier`` (a previous copy of this one).

        Buckets never go negative: if ``earlier`` is not a prefix of this
        histogram (its source restarted), use :func:`delta`, which treats the
        current histogram as the whole difference.
        """
        old = earlier.counts
        counts = {}
        for i, c in self.counts.items():
            d = c - old.get(i, 0)
            if d > 0:
                counts[i] = d
        total = sum(counts.values())
        return Histogram(counts, total, max(self.sum_us - earlier.sum_us, 0.0) if total else 0.0)

    def is_prefix_of(self, later: Histogram) -> bool:
        """True when ``later`` could have grown from this one (no bucket went down)."""
        if later.count < self.count:
            return False
        new = later.counts
        return all(new.get(i, 0) >= c for i, c in self.counts.items())

    def copy(self) -> Histogram:
        return Histogram(dict(self.counts), self.count, self.sum_us)

    def quantile(self, q: float) -> float | None:
        """The value below which a fraction ``q`` of observations fall; None if empty.

        Nearest rank: the ``ceil(q * count)``-th smallest observation (at
        least the first), reported as its bucket's value.
        """
        return self.quantiles([q])[0]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles in one pass over the buckets."""
        wanted = list(qs)
        for q in wanted:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.count == 0:
            return [None] * len(wanted)
        order = sorted(range(len(wanted)), key=lambda k: wanted[k])
        out: list[float | None] = [None] * len(wanted)
        pos = 0
        seen = 0
        last = 0
        for i in sorted(self.counts):
            last = i
            seen += self.counts[i]
            while pos < len(order) and seen >= max(1, math.ceil(wanted[order[pos]] * self.count)):
                out[order[pos]] = bucket_value(i)
                pos += 1
            if pos == len(order):
                break
        for k in order[pos:]:  # counts and count disagree: report the top bucket
            out[k] = bucket_value(last)
        return out

    @property
    def mean_us(self) -> float | None:
        return self.sum_us / self.count if self.count else None

    def nonzero(self) -> Iterator[tuple[int, int]]:
        """(index, count) for every non-empty bucket, in order: the wire form."""
        for i in sorted(self.counts):
            c = self.counts[i]
            if c:
                yield i, c

    @classmethod
    def from_sparse(
        cls, indexes: Iterable[int], counts: Iterable[int], sum_us: float = 0.0
    ) -> Histogram:
        """Builds a histogram from its wire form; out-of-range indexes are clamped."""
        h = cls()
        total = 0
        d = h.counts
        for i, c in zip(indexes, counts, strict=True):
            if c <= 0:
                continue
            k = min(max(int(i), 0), NUM_BUCKETS - 1)
            d[k] = d.get(k, 0) + int(c)
            total += int(c)
        h.count = total
        h.sum_us = sum_us
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.count == other.count and {i: c for i, c in self.counts.items() if c} == {
            i: c for i, c in other.counts.items() if c
        }

    __hash__ = None  # type: ignore[assignment]


def delta(current: Histogram, previous: Histogram | None) -> Histogram:
    """What a cumulative histogram gained since ``previous``, across restarts.

    A source that restarted reports a histogram that is not a superset of the
    previous one; then everything it now holds is new (it was counted from zero).
    """
    if previous is None or not previous.is_prefix_of(current):
        return current.copy()
    return current.subtract(previous)
