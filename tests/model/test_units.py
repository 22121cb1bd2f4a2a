"""Units read and written as a user of linkerd viz expects."""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.units import (
    UnitError,
    check_window,
    format_bytes,
    format_bytes_rate,
    format_latency_ms,
    format_latency_us,
    format_rps,
    format_success,
    format_window,
    parse_duration,
    parse_window,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10), ("1m", 60), ("1m30s", 90), ("15m", 900), ("250ms", 0.25), ("1h", 3600),
    ("1h30m", 5400), ("1.5s", 1.5), ("500us", 0.0005), ("500µs", 0.0005), ("2M", 120),
    (" 10s ", 10),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "1", "m", "1x", "1m 30s", "-1m", "1m30", "s10", "1.m"])
def test_bad_durations_say_what_they_expect(bad: str) -> None:
    with pytest.raises(UnitError, match="duration") as info:
        parse_duration(bad)
    assert "\n" not in str(info.value)


def test_windows_are_bounded_like_the_controllers_history() -> None:
    assert parse_window("1m") == 60
    assert parse_window("10s") == 10 and parse_window("15m") == 900
    for bad in ("5s", "9.9s", "16m", "1h", "15m1s"):
        with pytest.raises(UnitError, match=rf"{re.escape(bad)}.*outside 10s\.\.15m"):
            parse_window(bad)
    assert check_window(90) == 90
    with pytest.raises(UnitError, match=r"'1h' is outside"):
        check_window(3600)


@given(st.integers(10, 900))
def test_window_round_trip(seconds: int) -> None:
    assert parse_window(format_window(seconds)) == seconds


@given(st.integers(0, 10 * 86400))
def test_any_whole_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_window(seconds)) == seconds


def test_figures_look_like_linkerds() -> None:
    assert format_success(0.982) == "98.20%"
    assert format_success(1.0) == "100.00%"
    assert format_rps(12.34) == "12.3rps"
    assert format_rps(0.0) == "0.0rps"
    assert format_rps(1234.5) == "1234rps"
    assert format_bytes(512) == "512B"
    assert format_bytes(1536) == "1.5KiB"
    assert format_bytes_rate(3 * 1024 * 1024) == "3.0MiB/s"
    assert format_latency_us(1234.4) == "1234µs"


@pytest.mark.parametrize(("ms", "text"), [
    (0.0, "0µs"), (0.012, "12µs"), (0.0994, "99µs"), (0.0996, "0.1ms"), (0.4, "0.4ms"),
    (0.94, "0.9ms"), (0.96, "1ms"), (1.0, "1ms"), (4.2, "4ms"), (4.6, "5ms"), (999.0, "999ms"),
    (9_999.4, "9999ms"), (9_999.6, "10.0s"), (12_345, "12.3s"), (99_940, "99.9s"),
    (99_960, "100s"), (3_600_000, "3600s"),
])
def test_latency_rules(ms: float, text: str) -> None:
    assert format_latency_ms(ms) == text


@pytest.mark.parametrize(("n", "text"), [
    (0, "0B"), (1023, "1023B"), (1023.6, "1.0KiB"), (1024, "1.0KiB"), (1024 * 1023.96, "1.0MiB"),
    (5 * 1024**3, "5.0GiB"), (2 * 1024**4, "2.0TiB"), (3 * 1024**5, "3072.0TiB"),
])
def test_byte_rules(n: float, text: str) -> None:
    assert format_bytes(n) == text


def test_nothing_to_show_is_a_dash() -> None:
    for f in (format_success, format_rps, format_latency_ms, format_latency_us, format_bytes,
              format_bytes_rate):
        assert f(None) == "-"
        assert f(math.nan) == "-"
        assert f(math.inf) == "-"
    assert format_latency_ms(-1.0) == "-"


def _resolution_s(text: str) -> float:
    """Half of the last digit's step in a formatted latency, in seconds."""
    number, unit = re.fullmatch(r"([\d.]+)(µs|ms|s)", text).groups()  # type: ignore[union-attr]
    step = 10 ** -len(number.partition(".")[2])
    return step * {"µs": 1e-6, "ms": 1e-3, "s": 1.0}[unit] / 2


latencies_ms = st.floats(0, 4 * 3_600_000, allow_nan=False)


@given(latencies_ms)
def test_written_latency_reads_back_within_half_a_step(ms: float) -> None:
    text = format_latency_ms(ms)
    back = parse_duration(text)
    assert abs(back - ms / 1000) <= _resolution_s(text) * (1 + 1e-9) + 1e-12


@given(latencies_ms, latencies_ms)
def test_written_latencies_keep_their_order(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert parse_duration(format_latency_ms(lo)) <= parse_duration(format_latency_ms(hi))


@given(st.floats(0, 1e18, allow_nan=False))
def test_byte_figures_stay_below_1024_in_their_unit(n: float) -> None:
    text = format_bytes(n)
    number, unit = re.fullmatch(r"([\d.]+)(B|KiB|MiB|GiB|TiB)", text).groups()  # type: ignore[union-attr]
    assert float(number) < 1024 or unit == "TiB"
    scale = 1024 ** ("B", "KiB", "MiB", "GiB", "TiB").index(unit)
    assert float(number) * scale == pytest.approx(n, rel=0.05, abs=0.5 * scale)
