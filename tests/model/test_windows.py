"""Windowed rates: the figures a user reads off `meshtui stat` for a window."""

from __future__ import annotations

import pytest

from meshtui.model.histogram import Histogram
from meshtui.model.windows import FIELDS, Series, Snapshot, SourceWindows

G = ("in",)


def counters(**kw: int) -> tuple[int, ...]:
    return tuple(kw.get(f, 0) for f in FIELDS)


def series(success: int, failure: int = 0, latencies_us: list[float] | None = None,
           *, group: object = G, read: int = 0, open_conns: int = 0) -> Series:
    h = Histogram()
    for v in latencies_us or []:
        h.record(v)
    idx, cnt = zip(*h.nonzero(), strict=True) if h.count else ((), ())
    return Series(group, counters(requests=success + failure, success=success, failure=failure,
                                  read_bytes=read),
                  open_conns, list(idx), list(cnt), h.sum_us)


def snap(t: float, run: str = "a", start: float | None = None, **items: Series) -> Snapshot:
    return Snapshot(run, t, items, start)


def test_rates_success_and_percentiles_over_a_window() -> None:
    w = SourceWindows()
    w.observe(snap(100.0, s=series(0)))
    lat: list[float] = []
    ok = 0
    for t in range(101, 111):
        lat += [1000.0] * 9 + [50_000.0]  # 10 ms at p95+, 1 ms below
        ok += 10
        w.observe(snap(float(t), s=series(ok, 0, lat)))
    tot = w.totals(110.0, 10.0)
    assert tot.request_rate == pytest.approx(10.0)
    assert tot.success_rate == 1.0
    p50, p95, p99 = tot.latency_ms()
    assert p50 == pytest.approx(1.0, rel=0.01)
    assert p99 == pytest.approx(50.0, rel=0.01)
    assert p95 == pytest.approx(50.0, rel=0.01)
    assert tot.span_s == pytest.approx(10.0)


def test_first_snapshot_is_a_baseline_unless_the_source_just_started() -> None:
    w = SourceWindows()
    assert not w.observe(snap(100.0, s=series(5000)))
    assert w.totals(100.0, 60.0).success_count == 0
    w2 = SourceWindows()
    assert w2.observe(snap(100.0, start=98.0, s=series(20)))
    tot = w2.totals(100.0, 60.0)
    assert tot.success_count == 20
    assert tot.request_rate == pytest.approx(10.0)


def test_restart_counts_the_new_run_from_zero_and_nothing_twice() -> None:
    w = SourceWindows()
    w.observe(snap(0.0, s=series(0)))
    w.observe(snap(1.0, s=series(100)))
    w.observe(snap(2.0, s=series(200)))
    w.observe(snap(3.0, run="b", start=2.5, s=series(30)))  # restarted
    w.observe(snap(4.0, run="b", s=series(70)))
    tot = w.totals(4.0, 60.0)
    assert tot.success_count == 200 + 70
    assert tot.request_rate >= 0


def test_counter_going_down_in_one_run_is_a_reset_of_that_series() -> None:
    w = SourceWindows()
    w.observe(snap(0.0, s=series(50), o=series(10, group="x")))
    w.observe(snap(1.0, s=series(60), o=series(20, group="x")))
    w.observe(snap(2.0, s=series(5), o=series(30, group="x")))
    assert w.totals(2.0, 60.0, lambda g: g == G).success_count == 10 + 5
    assert w.totals(2.0, 60.0, lambda g: g == "x").success_count == 20


def test_a_gap_is_averaged_over_its_true_length() -> None:
    w = SourceWindows()
    w.observe(snap(0.0, s=series(0)))
    w.observe(snap(1.0, s=series(10)))
    w.observe(snap(31.0, s=series(310)))  # 29 scrapes missed
    tot = w.totals(31.0, 10.0)
    assert tot.success_count == 300
    assert tot.span_s == pytest.approx(30.0)
    assert tot.request_rate == pytest.approx(10.0)


def test_open_connections_is_the_latest_gauge() -> None:
    w = SourceWindows()
    w.observe(snap(0.0, c=series(0, group="tcp", open_conns=3)))
    w.observe(snap(1.0, c=series(0, group="tcp", open_conns=5, read=1000)))
    tot = w.totals(1.0, 10.0)
    assert tot.open_connections == 5
    assert tot.read_rate == pytest.approx(1000.0)


def test_long_windows_use_blocks_and_cover_the_horizon() -> None:
    w = SourceWindows(fine_s=30.0)
    for t in range(0, 1000):
        w.observe(snap(float(t), s=series(t * 2)))
    for window in (10, 45, 60, 300, 900):
        tot = w.totals(999.0, float(window))
        # Snapping outward adds at most one 10 s block beyond the fine level.
        assert window <= tot.span_s <= window + 10
        assert tot.success_count == pytest.approx(2 * tot.span_s)
        assert tot.request_rate == pytest.approx(2.0)


def test_history_points_fill_the_window() -> None:
    w = SourceWindows()
    for t in range(0, 301):
        w.observe(snap(float(t), s=series(t * 3, latencies_us=[2000.0] * t)))
    step, pts = w.points(300.0, 300.0, 10.0)
    assert step == 10.0
    assert len(pts) >= 29
    for _end, tot in pts[1:]:
        assert tot.request_rate == pytest.approx(3.0)
    step, fine = w.points(300.0, 30.0, 1.0)
    assert step == 1.0 and len(fine) == 30


@pytest.mark.parametrize("back", [0, 7, 20, 33, 61, 125, 300])
def test_a_window_that_ended_earlier_covers_the_whole_window(back: int) -> None:
    """Ten minutes at 10 requests a second, then 50 a second for the last two: a
    minute ending ``back`` seconds ago spans a minute whatever blocks it cuts across,
    and counts what was sent in it."""
    w = SourceWindows()
    w.observe(snap(1000.0, s=series(0)))
    ok = 0
    for t in range(1001, 1601):
        ok += 10 if t <= 1480 else 50
        w.observe(snap(float(t), s=series(ok)))
    end = 1600.0 - back
    tot = w.totals(end, 60.0)
    # Snapped outward to whole 10 s blocks at the old edge, never short of the window;
    # past the two minutes of single steps, the new edge is a 10 s block's too.
    assert 60.0 <= tot.span_s < 70.0
    assert tot.end_s == end if back <= 120 else end - 10 < tot.end_s <= end
    if back + 60 <= 120:  # within the two minutes of single steps: exactly the window
        assert tot.span_s == 60.0
    sent = sum(10 if t <= 1480 else 50 for t in range(int(tot.start_s) + 1, int(tot.end_s) + 1))
    assert tot.success_count == sent


def test_all_tls_is_judged_over_the_window_from_the_count_of_mutual_tls_responses() -> None:
    """One plain response early, then only mutual TLS: all-TLS over a window that no
    longer holds the plain one, not over one that does, and no claim without responses."""
    w = SourceWindows()

    def at(t: float, ok: int, tls: int) -> None:
        w.observe(snap(t, s=Series(G, counters(requests=ok, success=ok, tls=tls))))

    at(100.0, 0, 0)
    at(101.0, 1, 0)  # the plain one
    for t in range(102, 112):
        at(float(t), t - 100, t - 101)
    assert not w.totals(111.0, 60.0).all_tls
    assert w.totals(111.0, 60.0).counters[FIELDS.index("tls")] == 10
    assert w.totals(111.0, 5.0).all_tls
    at(200.0, 11, 10)  # nothing new
    assert not w.totals(200.0, 5.0).all_tls and not w.totals(200.0, 5.0).has_traffic
