"""Prometheus's histogram_quantile rules, case by case (tests/client compares the same
function with a real Prometheus's answers)."""

import math

import pytest

from meshtui.model.prom_quantile import (
    bucket_quantile,
    parse_bound,
    series_quantiles,
    tolerance_for,
)

INF = math.inf
SPREAD = [(1.0, 10.0), (2.0, 30.0), (5.0, 40.0), (INF, 40.0)]


def test_interpolates_linearly_inside_the_bucket_the_rank_falls_in() -> None:
    assert bucket_quantile(0.5, SPREAD) == 1.5  # rank 20: half-way through (1, 2]
    assert bucket_quantile(0.875, SPREAD) == 3.5  # rank 35: half-way through (2, 5]
    assert bucket_quantile(0.75, SPREAD) == 2.0  # rank 30: exactly the bound reached


def test_order_of_the_buckets_does_not_matter() -> None:
    assert bucket_quantile(0.5, list(reversed(SPREAD))) == 1.5


def test_the_lowest_bucket_starts_at_zero_unless_its_bound_is_not_positive() -> None:
    assert bucket_quantile(0.05, SPREAD) == pytest.approx(0.2)  # rank 2 of 10 in (0, 1]
    assert bucket_quantile(0.1, [(0.0, 5.0), (1.0, 10.0), (INF, 10.0)]) == 0.0
    assert bucket_quantile(0.1, [(-3.0, 5.0), (1.0, 10.0), (INF, 10.0)]) == -3.0


def test_a_rank_in_the_inf_bucket_answers_the_highest_finite_bound() -> None:
    buckets = [(1.0, 1.0), (2.0, 2.0), (INF, 10.0)]
    assert bucket_quantile(0.99, buckets) == 2.0
    assert bucket_quantile(1.0, SPREAD) == 5.0  # rank 40 is reached by le=5 already


def test_nan_without_inf_bucket_with_one_bucket_or_no_observations() -> None:
    assert math.isnan(bucket_quantile(0.5, [(1.0, 10.0), (2.0, 20.0)]))
    assert math.isnan(bucket_quantile(0.5, [(INF, 20.0)]))
    assert math.isnan(bucket_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]))
    assert math.isnan(bucket_quantile(0.5, []))


def test_q_zero_over_an_empty_lowest_bucket_is_nan_as_go_divides() -> None:
    assert math.isnan(bucket_quantile(0.0, [(1.0, 0.0), (2.0, 5.0), (INF, 5.0)]))
    assert bucket_quantile(0.0, SPREAD) == 0.0


def test_quantiles_out_of_range() -> None:
    assert bucket_quantile(-0.1, SPREAD) == -INF
    assert bucket_quantile(1.1, SPREAD) == INF
    assert math.isnan(bucket_quantile(math.nan, SPREAD))


def test_buckets_of_the_same_bound_are_added() -> None:
    # le="1" and le="1.0" are one bucket of 10 of 20: the median is its bound.
    assert bucket_quantile(0.5, [(1.0, 5.0), (1.0, 5.0), (INF, 20.0)]) == 1.0


def test_a_count_below_an_earlier_one_is_raised_to_it() -> None:
    dented = [(1.0, 10.0), (2.0, 5.0), (5.0, 20.0), (INF, 20.0)]
    for tolerance in (0.0, 1e-12):
        assert bucket_quantile(0.5, dented, tolerance) == 1.0
        assert bucket_quantile(0.6, dented, tolerance) == pytest.approx(2.6)


def test_float_noise_between_buckets_is_ignored_since_prometheus_2_49() -> None:
    d = 2.0 ** -40  # 1e-12 of 10 is bigger: noise
    noisy = [(1.0, 10.0), (2.0, 10.0 + 2 * d), (5.0, 20.0 + 2 * d), (INF, 20.0 + 2 * d)]
    # Before 2.49 the hair-thin (1, 2] bucket holds the rank (10 + d): its middle.
    assert bucket_quantile(0.5, noisy, tolerance=0.0) == 1.5
    # Since, that bucket is as full as the one before, and the rank goes on to (2, 5].
    assert bucket_quantile(0.5, noisy) == pytest.approx(2.0, abs=1e-9)
    assert bucket_quantile(0.5, noisy) > 2.0
    # A real difference is no noise, under either rule.
    assert bucket_quantile(0.5, SPREAD, 0.0) == bucket_quantile(0.5, SPREAD) == 1.5


def test_which_versions_ignore_small_deltas() -> None:
    assert tolerance_for("2.42.0+ds") == 0.0
    assert tolerance_for("2.48.1") == 0.0
    assert tolerance_for("2.49.0") == 1e-12
    assert tolerance_for("v3.1.0") == 1e-12
    assert tolerance_for(None) == tolerance_for("unknown") == 1e-12  # the current rule


def test_bounds_read_as_prometheus_reads_them() -> None:
    assert parse_bound("0.005") == 0.005
    assert parse_bound("+Inf") == parse_bound("inf") == parse_bound("Infinity") == INF
    assert parse_bound("1e3") == parse_bound("0x1.f4p9") == 1000.0
    assert parse_bound("-Inf") == -INF
    nan = parse_bound("NaN")
    assert nan is not None and math.isnan(nan)
    for bad in (None, "", " 1", "1_000", "0x10", "ten", "+nan", "1e400"):
        assert parse_bound(bad) is None, bad


def test_series_are_the_labels_without_le_and_unreadable_bounds_are_skipped() -> None:
    samples = [
        ({"le": "1", "deployment": "web"}, 10.0),
        ({"le": "2", "deployment": "web"}, 30.0),
        ({"le": "+Inf", "deployment": "web"}, 40.0),
        ({"le": "wide", "deployment": "web"}, 1000.0),  # skipped, as Prometheus does
        ({"deployment": "web"}, 1000.0),  # no le: skipped
        ({"__name__": "x", "le": "1", "deployment": "api"}, 0.0),
        ({"le": "+Inf", "deployment": "api"}, 0.0),
    ]
    got = dict((labels["deployment"], qs) for labels, qs in
               series_quantiles(samples, (0.5, 0.99)))
    assert got["web"] == (1.5, 2.0)
    assert len(got["api"]) == 2 and all(math.isnan(q) for q in got["api"])
    assert [labels for labels, _ in series_quantiles(samples, (0.5,))] == [
        {"deployment": "web"}, {"deployment": "api"}]
