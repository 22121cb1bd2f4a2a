"""--since / --until forms."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from meshtui.model.timerange import RangeError, parse_instant, parse_range

UTC = UTC
CET = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 4, 16, 30, tzinfo=UTC).timestamp()


def at(*args: int, tz: timezone = UTC) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


@pytest.mark.parametrize(("text", "want"), [
    ("14:00", at(2026, 12, 4, 14, 0)),
    ("14:00:30", at(2026, 12, 4, 14, 0, 30)),
    ("17:00", at(2026, 12, 3, 17, 0)),  # later than now today: yesterday's
    ("-2h", NOW - 7200),
    ("-1h30m", NOW - 5400),
    ("now", NOW),
    ("2026-12-04T14:00", at(2026, 12, 4, 14, 0)),
    ("2026-12-04 14:00:00Z", at(2026, 12, 4, 14, 0)),
    ("2026-12-04T15:00+01:00", at(2026, 12, 4, 14, 0)),
])
def test_forms(text: str, want: float) -> None:
    assert parse_instant(text, NOW, UTC) == want


def test_local_time_is_the_given_zone() -> None:
    assert parse_instant("14:00", NOW, CET) == at(2026, 12, 4, 14, 0, tz=CET)


@pytest.mark.parametrize("text", ["yesterday", "25:00", "-2x", "14h", "2026-13-01"])
def test_unreadable_forms_name_the_accepted_ones(text: str) -> None:
    with pytest.raises(RangeError, match="14:00, 14:00:30, an ISO time"):
        parse_instant(text, NOW, UTC)


def test_ranges() -> None:
    assert parse_range(None, None, NOW, UTC) is None
    assert parse_range("-2h", None, NOW, UTC) == (NOW - 7200, NOW)
    assert parse_range("14:00", "15:00", NOW, UTC) == (at(2026, 12, 4, 14), at(2026, 12, 4, 15))
    with pytest.raises(RangeError, match="not before"):
        parse_range("15:00", "14:00", NOW, UTC)
    with pytest.raises(RangeError, match="in the future"):
        parse_range(None, "2027-01-01T00:00", NOW, UTC)
