import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.units import (
    UnitError,
    format_bytes,
    format_bytes_rate,
    format_latency_ms,
    format_rps,
    format_success,
    format_window,
    parse_duration,
    parse_window,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10), ("1m", 60), ("1m30s", 90), ("15m", 900), ("250ms", 0.25), ("1h", 3600),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1", "m", "1x", "1m 30s", "-1m", "1m30", "s10"])
def test_bad_durations_say_what_they_expect(bad: str) -> None:
    with pytest.raises(UnitError):
        parse_duration(bad)


def test_windows_are_bounded_like_the_controllers_history() -> None:
    assert parse_window("1m") == 60
    for bad in ("5s", "16m", "1h"):
        with pytest.raises(UnitError, match=r"outside 10s\.\.15m"):
            parse_window(bad)


@given(st.integers(10, 900))
def test_window_round_trip(seconds: int) -> None:
    assert parse_window(format_window(seconds)) == seconds


def test_figures_look_like_linkerds() -> None:
    assert format_success(0.982) == "98.20%"
    assert format_rps(12.34) == "12.3rps"
    assert format_latency_ms(4.2) == "4ms"
    assert format_latency_ms(0.4) == "0.4ms"
    assert format_latency_ms(0.012) == "12µs"
    assert format_latency_ms(12_345) == "12.3s"
    assert format_bytes(512) == "512B"
    assert format_bytes(1536) == "1.5KiB"
    assert format_bytes_rate(3 * 1024 * 1024) == "3.0MiB/s"
    for f in (format_success, format_rps, format_latency_ms, format_bytes_rate):
        assert f(None) == "-"
        assert f(math.nan) == "-"
