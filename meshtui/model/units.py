"""Reading and writing the units users see: windows, latencies, rates, bytes.

Formats follow ``linkerd viz stat``: ``98.20%``, ``12.3rps``, ``4ms`` (sub-
millisecond as ``0.4ms``), and ``-`` wherever there is nothing to show
(None, NaN, infinity).

Latency is written at the coarsest precision that still says something:

=====================  ===========  ====================
value                  written as   resolution
=====================  ===========  ====================
below 0.1 ms           ``12µs``     1 µs
0.1 ms to below 1 ms   ``0.4ms``    0.1 ms
1 ms to below 10 s     ``4ms``      1 ms
10 s to below 100 s    ``12.3s``    0.1 s
100 s and more         ``125s``     1 s
=====================  ===========  ====================

Each bound applies to the value as rounded for display, so ``0.96`` ms is
``1ms``, never ``1.0ms``; every figure read back with :func:`parse_duration`
is within half a resolution step of the value written.
"""

from __future__ import annotations

import math
import re

MIN_WINDOW_S = 10
MAX_WINDOW_S = 15 * 60
# The longest window asked of a Prometheus (which says itself what it holds).
MAX_PROMETHEUS_WINDOW_S = 31 * 24 * 3600
NONE = "-"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|s|m|h)")
_SCALE = {"us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


class UnitError(ValueError):
    """A duration or window that cannot be read."""


def parse_duration(text: str) -> float:
    """``1m30s`` / ``10s`` / ``250ms`` / ``1h`` / ``500µs`` → seconds.

    One or more ``NUMBER UNIT`` parts, written together, units ``h``, ``m``,
    ``s``, ``ms``, ``us`` or ``µs``, any letter case.
    """
    s = text.strip().lower()
    if not s:
        raise UnitError("empty duration: use forms like 10s, 1m, 1m30s, 15m")
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SCALE[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise UnitError(
            f"cannot read duration {text.strip()!r}: use forms like 10s, 1m, 1m30s, 15m")
    return total


def check_window(seconds: float, text: str | None = None, max_s: int = MAX_WINDOW_S) -> int:
    """A window in whole seconds, if within 10 s and ``max_s`` (the controller keeps 15 min)."""
    if not MIN_WINDOW_S <= seconds <= max_s:
        shown = text.strip() if text is not None else format_window(seconds)
        hint = ("; the controller keeps 15m, --prometheus URL reads longer ones"
                if max_s == MAX_WINDOW_S and seconds > max_s else "")
        raise UnitError(f"time window {shown!r} is outside 10s..{format_window(max_s)}{hint}")
    return round(seconds)


def parse_window(text: str, max_s: int = MAX_WINDOW_S) -> int:
    """A stat window (``-t``) in whole seconds: :func:`parse_duration` then :func:`check_window`."""
    return check_window(parse_duration(text), text, max_s)


def format_window(seconds: float) -> str:
    """60 → ``1m``, 90 → ``1m30s``, 10 → ``10s``, 5400 → ``1h30m``."""
    rest = round(seconds)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out or "0s"


def _missing(v: float | None) -> bool:
    return v is None or not math.isfinite(v)


def format_latency_ms(ms: float | None) -> str:
    """A latency given in milliseconds, by the rules in the module docstring."""
    if ms is None or _missing(ms) or ms < 0:
        return NONE
    us = round(ms * 1000)
    if us < 100:
        return f"{us}µs"
    tenths = round(ms, 1)
    if tenths < 1:
        return f"{tenths:.1f}ms"
    if round(ms) < 10_000:
        return f"{max(round(ms), 1)}ms"
    s = ms / 1000
    return f"{s:.1f}s" if round(s, 1) < 100 else f"{round(s)}s"


def format_latency_us(us: float | None) -> str:
    """A single request's latency for tap lines, in whole microseconds: ``1234µs``."""
    if us is None or _missing(us):
        return NONE
    return f"{round(us)}µs"


def format_rps(rps: float | None) -> str:
    """``12.3rps``; whole numbers from 1000 rps."""
    if rps is None or _missing(rps):
        return NONE
    return f"{rps:.1f}rps" if abs(round(rps, 1)) < 1000 else f"{rps:.0f}rps"


def format_success(fraction: float | None) -> str:
    """A fraction 0..1 as a percentage with two decimals: ``98.20%``."""
    if fraction is None or _missing(fraction):
        return NONE
    return f"{fraction * 100:.2f}%"


def format_bytes(n: float | None) -> str:
    """``512B``, ``1.2KiB``, ``3.4MiB``, ``1.0GiB``: the largest unit whose figure is below 1024."""
    if n is None or _missing(n):
        return NONE
    value = float(n)
    for unit in _BYTE_UNITS:
        shown = round(value) if unit == "B" else round(value, 1)
        if abs(shown) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{shown}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_bytes_rate(per_s: float | None) -> str:
    """``1.2KiB/s``."""
    return NONE if per_s is None or _missing(per_s) else f"{format_bytes(per_s)}/s"
