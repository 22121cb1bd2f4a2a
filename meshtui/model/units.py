"""Reading and writing the units users see: windows, latencies, rates, bytes.

Formats follow ``linkerd viz stat``: ``98.20%``, ``12.3rps``, ``4ms`` (sub-
millisecond as ``0.4ms``), and ``-`` wherever there is nothing to show.
"""

from __future__ import annotations

import math
import re

MIN_WINDOW_S = 10
MAX_WINDOW_S = 15 * 60
NONE = "-"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class UnitError(ValueError):
    """A duration or window that cannot be read."""


def parse_duration(text: str) -> float:
    """``1m30s`` / ``10s`` / ``250ms`` / ``1h`` → seconds."""
    s = text.strip().lower()
    if not s:
        raise UnitError("empty duration")
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SCALE[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise UnitError(f"cannot read duration {text!r}: use forms like 10s, 1m, 1m30s, 15m")
    return total


def parse_window(text: str) -> int:
    """A stat window in whole seconds, within what the controller keeps (10 s – 15 min)."""
    seconds = parse_duration(text)
    if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
        raise UnitError(f"time window {text!r} is outside 10s..15m")
    return round(seconds)


def format_window(seconds: float) -> str:
    """60 → ``1m``, 90 → ``1m30s``, 10 → ``10s``."""
    s = round(seconds)
    m, s = divmod(s, 60)
    if m and s:
        return f"{m}m{s}s"
    return f"{m}m" if m else f"{s}s"


def _missing(v: float | None) -> bool:
    return v is None or math.isnan(v)


def format_latency_ms(ms: float | None) -> str:
    """Latency as Linkerd prints it: whole ms from 1 ms, one decimal below, s from 10 s."""
    if _missing(ms):
        return NONE
    assert ms is not None
    if ms < 1:
        return f"{ms:.1f}ms" if ms >= 0.05 else f"{ms * 1000:.0f}µs"
    if ms < 10_000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


def format_latency_us(us: float) -> str:
    """A single request's latency for tap lines: ``1234µs``."""
    return f"{us:.0f}µs"


def format_rps(rps: float | None) -> str:
    if _missing(rps):
        return NONE
    assert rps is not None
    return f"{rps:.1f}rps" if rps < 1000 else f"{rps:.0f}rps"


def format_success(fraction: float | None) -> str:
    if _missing(fraction):
        return NONE
    assert fraction is not None
    return f"{fraction * 100:.2f}%"


def format_bytes(n: float | None) -> str:
    """``512B``, ``1.2KiB``, ``3.4MiB``, ``1.0GiB``."""
    if _missing(n):
        return NONE
    assert n is not None
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return NONE  # pragma: no cover


def format_bytes_rate(per_s: float | None) -> str:
    return NONE if _missing(per_s) else f"{format_bytes(per_s)}/s"
