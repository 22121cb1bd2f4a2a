"""Absolute time ranges: what ``--since`` and ``--until`` accept.

Three forms, the ones users of kubectl and Prometheus reach for:

- a time of day, ``14:00`` or ``14:00:30``: its latest occurrence at or before
  now, in local time (``--since 23:00`` just after midnight means last night);
- an ISO 8601 time, ``2026-12-04T14:00``, ``2026-12-04 14:00:00``, with an
  offset or ``Z`` (UTC) or without one (local time);
- a time relative to now, ``-2h``, ``-90m``, ``-1h30m`` (or ``now``).

Everything here is pure: "now" and the local time zone are arguments.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

from meshtui.model.units import UnitError, parse_duration

FORMS = "14:00, 14:00:30, an ISO time such as 2026-12-04T14:00 or 2026-12-04T14:00:00Z, " \
    "-2h or -90m (before now), or now"

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


class RangeError(UnitError):
    """A --since / --until that cannot be read, or a range that ends before it starts."""


def parse_instant(text: str, now: float, tz: tzinfo) -> float:
    """One of the forms above → seconds since the epoch."""
    t = text.strip()
    if t.lower() == "now":
        return now
    if t.startswith("-"):
        try:
            return now - parse_duration(t[1:])
        except UnitError:
            raise RangeError(f"cannot read time {t!r}: use {FORMS}") from None
    m = _CLOCK.fullmatch(t)
    if m:
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or s > 59:
            raise RangeError(f"no such time of day {t!r}: use {FORMS}")
        today = datetime.fromtimestamp(now, tz)
        at = today.replace(hour=h, minute=mi, second=s, microsecond=0)
        if at.timestamp() > now:
            at -= timedelta(days=1)
        return at.timestamp()
    try:
        at = datetime.fromisoformat(t.replace("z", "Z"))
    except ValueError:
        raise RangeError(f"cannot read time {t!r}: use {FORMS}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    return at.timestamp()


def parse_range(since: str | None, until: str | None, now: float, tz: tzinfo
                ) -> tuple[float, float] | None:
    """``--since`` and ``--until`` → (start, end) in epoch seconds; None when neither is given.

    ``--until`` alone needs a window from elsewhere (``-t``), so it gives
    (end - 0, end) and the caller puts its window in front of it.
    """
    if since is None and until is None:
        return None
    end = parse_instant(until, now, tz) if until is not None else now
    if end > now + 1:
        raise RangeError(f"--until {until} is in the future")
    start = parse_instant(since, now, tz) if since is not None else end
    if since is not None and start >= end:
        raise RangeError(f"--since {since} is not before --until {until or 'now'}")
    return start, end
