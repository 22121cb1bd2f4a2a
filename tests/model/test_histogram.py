"""The latency histogram: quantiles within 1 %, exact merge and subtract, bounded size."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from meshtui.model.histogram import (
    MAX_US,
    MIN_US,
    NUM_BUCKETS,
    Histogram,
    bucket_index,
    bucket_upper,
    bucket_value,
    delta,
)

HOUR_US = 3600 * 1e6
# Latencies from 1 µs to 1 h, spread evenly on a log scale as well as linearly
# (a linear draw alone would almost never produce microseconds).
latency = st.one_of(
    st.floats(1.0, HOUR_US),
    st.floats(0.0, math.log(HOUR_US)).map(math.exp).map(lambda v: min(max(v, 1.0), HOUR_US)),
    st.sampled_from([1.0, 999.0, 1000.0, 1001.0, HOUR_US]),
)
samples = st.lists(latency, min_size=1, max_size=300)
quantile = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]))


def hist(values: list[float]) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@settings(max_examples=300, deadline=None)
@given(samples, quantile)
def test_every_quantile_is_within_one_percent_of_the_exact_value(values, q) -> None:
    est = hist(values).quantile(q)
    exact = nearest_rank(values, q)
    assert est is not None
    assert abs(est - exact) <= 0.01 * exact, (q, exact, est)


@settings(deadline=None)
@given(samples, st.lists(quantile, min_size=1, max_size=8))
def test_quantiles_in_one_pass_equal_one_at_a_time_and_rise_with_q(values, qs) -> None:
    h = hist(values)
    many = h.quantiles(qs)
    assert many == [h.quantile(q) for q in qs]
    by_q = [v for _, v in sorted(zip(qs, many, strict=True), key=lambda p: p[0])]
    assert by_q == sorted(by_q)  # type: ignore[type-var]


@given(st.lists(latency, max_size=100), st.lists(latency, max_size=100))
def test_merge_is_exact(a, b) -> None:
    merged = hist(a).merged(hist(b))
    assert merged == hist(a + b)
    assert merged.count == len(a) + len(b)
    assert merged.sum_us == pytest.approx(sum(a) + sum(b))


@given(st.lists(latency, max_size=60), st.lists(latency, max_size=60),
       st.lists(latency, max_size=60))
def test_merge_is_associative_and_commutative(a, b, c) -> None:
    ha, hb, hc = hist(a), hist(b), hist(c)
    assert ha.merged(hb).merged(hc) == ha.merged(hb.merged(hc))
    assert ha.merged(hb) == hb.merged(ha)
    assert ha.merged(Histogram()) == ha


@given(st.lists(latency, max_size=100), st.lists(latency, max_size=100))
def test_subtract_inverts_merge(a, b) -> None:
    ha, hb = hist(a), hist(b)
    grown = ha.merged(hb)
    assert ha.is_prefix_of(grown)
    diff = grown.subtract(ha)
    assert diff == hb
    assert diff.count == len(b)
    assert diff.sum_us == pytest.approx(sum(b), rel=1e-9, abs=1e-3 * (sum(a) + 1))
    assert all(c > 0 for c in diff.counts.values())


@given(st.lists(latency, max_size=80), st.lists(latency, max_size=80),
       st.lists(latency, min_size=1, max_size=80))
def test_delta_counts_a_restarted_source_from_zero(before, since, after_restart) -> None:
    previous = hist(before + since)
    # Same run: only what came since.
    assert delta(previous.merged(hist(after_restart)), previous) == hist(after_restart)
    assert delta(previous, None) == previous
    # The source restarted and now holds less than before in some bucket:
    # everything it holds is new, and nothing goes negative.
    current = hist(after_restart)
    assume(not previous.is_prefix_of(current))
    d = delta(current, previous)
    assert d == current
    assert d is not current  # a copy: later records into current do not leak into d


def test_delta_of_a_counter_reset_in_one_bucket() -> None:
    previous = hist([1000.0] * 10)
    current = hist([1000.0] * 3 + [5000.0])  # fewer 1 ms than before: restarted
    assert delta(current, previous) == current
    assert delta(current, previous).count == 4


@given(samples)
def test_wire_form_round_trips(values) -> None:
    h = hist(values)
    indexes, counts = zip(*h.nonzero(), strict=True)
    back = Histogram.from_sparse(indexes, counts, h.sum_us)
    assert back == h and back.sum_us == h.sum_us
    assert list(indexes) == sorted(indexes)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=200))
def test_memory_is_bounded_whatever_is_recorded(values) -> None:
    h = hist(values)
    assert len(h.counts) <= NUM_BUCKETS
    assert all(0 <= i < NUM_BUCKETS for i in h.counts)
    assert h.count == len(values)
    assert math.isfinite(h.sum_us) and 0 <= h.sum_us <= MAX_US * len(values)


@given(st.floats(MIN_US * 1.0001, MAX_US))
def test_each_value_lands_in_the_bucket_that_bounds_it(v) -> None:
    i = bucket_index(v)
    assert bucket_upper(i - 1) < v <= bucket_upper(i) * (1 + 1e-12)
    assert abs(bucket_value(i) - v) <= 0.01 * v


def test_edges_of_the_range() -> None:
    assert bucket_index(0.0) == bucket_index(-5.0) == bucket_index(MIN_US) == 0
    assert bucket_index(math.nan) == 0
    assert bucket_index(MAX_US * 100) == NUM_BUCKETS - 1
    assert Histogram().quantile(0.5) is None
    assert Histogram().mean_us is None
    with pytest.raises(ValueError, match="quantile"):
        hist([1.0]).quantile(1.5)
    h = hist([10.0, 20.0])
    assert h.mean_us == 15.0
    h.record(30.0, n=2)
    assert h.count == 4 and h.quantile(1.0) == pytest.approx(30.0, rel=0.01)
