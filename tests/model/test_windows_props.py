"""Property tests of windowed rates: resets and gaps never bend the figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from meshtui.model.histogram import Histogram
from meshtui.model.windows import FAILURE, FIELDS, SUCCESS, Series, Snapshot, SourceWindows

KEYS = ("a1", "a2", "b1")  # series; the letter is the group


def group_of(key: str) -> str:
    return key[0]


@dataclass
class Recorded:
    """What the fake proxy recorded between two scrapes the windows saw."""

    success: int = 0
    failure: int = 0
    latency: Histogram = field(default_factory=Histogram)

    def add(self, other: Recorded) -> None:
        self.success += other.success
        self.failure += other.failure
        self.latency.merge(other.latency)


increment = st.tuples(
    st.integers(0, 40), st.integers(0, 5),
    st.lists(st.floats(1.0, 5e6), max_size=6),
)
restart_often = st.integers(0, 9).map(lambda n: n == 0)


@st.composite
def histories(draw: st.DrawFn, max_ticks: int = 60) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(1, max_ticks))):
        out.append({
            "restart": draw(restart_often),
            "scraped": draw(st.integers(0, 9)) > 1,
            "dt": draw(st.integers(1, 7)),
            "inc": draw(st.dictionaries(st.sampled_from(KEYS), increment)),
        })
    return out


def replay(ticks: list[dict], w: SourceWindows) -> list[tuple[float, dict[str, Recorded]]]:
    """Drives a fake proxy through the ticks; returns what each seen scrape brought."""
    run = 0
    cum: dict[str, list] = {}
    pending: dict[str, Recorded] = {}
    seen: list[tuple[float, dict[str, Recorded]]] = []
    t = 0.0
    for tk in ticks:
        t += tk["dt"]
        if tk["restart"]:
            run += 1
            cum, pending = {}, {}  # what the old run held since the last scrape is lost
        for key, (ok, bad, lats) in tk["inc"].items():
            c = cum.setdefault(key, [0, 0, Histogram()])
            rec = pending.setdefault(key, Recorded())
            c[0] += ok
            c[1] += bad
            rec.success += ok
            rec.failure += bad
            for v in lats:
                c[2].record(v)
                rec.latency.record(v)
        if not tk["scraped"]:
            continue
        items = {}
        for key, (ok, bad, h) in cum.items():
            idx, cnt = zip(*h.nonzero(), strict=True) if h.count else ((), ())
            vals = {"requests": ok + bad, "success": ok, "failure": bad}
            items[key] = Series(group_of(key), tuple(vals.get(f, 0) for f in FIELDS), 0,
                                list(idx), list(cnt), h.sum_us, h.count)
        if w.observe(Snapshot(f"run{run}", t, items)):
            seen.append((t, pending))
        pending = {}
    return seen


def expected(seen: list[tuple[float, dict[str, Recorded]]], lo: float, hi: float,
             group: str | None = None) -> Recorded:
    out = Recorded()
    for t, recs in seen:
        if lo < t <= hi:
            for key, rec in recs.items():
                if group is None or group_of(key) == group:
                    out.add(rec)
    return out


@settings(max_examples=35, deadline=None)
@given(histories(), st.integers(1, 900), st.sampled_from([None, "a", "b"]))
def test_window_totals_equal_what_was_recorded_in_it(
    ticks: list[dict], window: int, group: str | None
) -> None:
    w = SourceWindows(fine_s=1000.0)  # every step kept: windows are exact
    seen = replay(ticks, w)
    if w.last_time is None:
        return
    now = w.last_time
    tot = w.totals(now, float(window), None if group is None else (lambda g: g == group))
    exp = expected(seen, now - window, now, group)
    assert tot.counters[SUCCESS] == exp.success
    assert tot.counters[FAILURE] == exp.failure
    assert tot.latency == exp.latency
    assert tot.request_rate >= 0 and tot.read_rate >= 0 and tot.write_rate >= 0


@settings(max_examples=25, deadline=None)
@given(histories(max_ticks=160), st.integers(1, 900), st.sampled_from([5.0, 30.0, 120.0]))
def test_long_histories_snap_outward_but_never_double_count(
    ticks: list[dict], window: int, fine_s: float
) -> None:
    w = SourceWindows(fine_s=fine_s)
    seen = replay(ticks, w)
    if w.last_time is None or not seen:
        return
    now = w.last_time
    tot = w.totals(now, float(window))
    if tot.span_s == 0:
        assert expected(seen, now - window, now).success == 0
        return
    # Exactly the steps after the covered start, each counted once ...
    exp = expected(seen, tot.start_s, now)
    assert (tot.counters[SUCCESS], tot.counters[FAILURE]) == (exp.success, exp.failure)
    assert tot.latency == exp.latency
    # ... covering the window asked for, and at most a block and a step more.
    first_start = seen[0][0]
    if first_start <= now - window:
        assert tot.start_s <= now - window
    assert tot.start_s >= now - window - 10 - 7 * 20
    assert tot.request_rate >= 0


@settings(max_examples=40, deadline=None)
@given(histories(), st.integers(1, 900))
def test_rates_are_never_negative_and_nothing_is_counted_twice(
    ticks: list[dict], window: int
) -> None:
    w = SourceWindows()
    seen = replay(ticks, w)
    if w.last_time is None:
        return
    whole = w.totals(w.last_time, 900.0)
    total_seen = expected(seen, -1.0, w.last_time)
    assert whole.counters[SUCCESS] == total_seen.success
    part = w.totals(w.last_time, float(window))
    assert 0 <= part.counters[SUCCESS] <= whole.counters[SUCCESS]
    assert all(v >= 0 for v in part.counters)
    assert all(c > 0 for c in part.latency.counts.values())
    _, points = w.points(w.last_time, 900.0, 10.0)
    assert sum(p.counters[SUCCESS] for _, p in points) == whole.counters[SUCCESS]
    assert all(p.request_rate >= 0 for _, p in points)
