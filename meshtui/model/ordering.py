"""Sorting rows the way a live table needs: by raw value, missing values last.

A value that is None (or NaN) is shown as "-" and sorts after every real one
whichever way the column is ordered; ties keep a stable secondary order, so
rows do not jump between refreshes when their figures are equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

R = TypeVar("R")


def sort_by(rows: Iterable[R], get: Callable[[R], Any], *, reverse: bool = False,
            tiebreak: Callable[[R], Any] | None = None) -> list[R]:
    """``rows`` ordered by ``get(row)``, rows without a value last in either direction.

    Each value is read once: a live table sorts ten thousand rows a second.
    """
    present: list[tuple[Any, R]] = []
    missing: list[R] = []
    for r in rows:
        v = get(r)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing.append(r)
        else:
            present.append((v, r))
    if tiebreak is not None:
        tb = tiebreak
        present.sort(key=lambda t: tb(t[1]))
        missing.sort(key=tb)
    present.sort(key=_first, reverse=reverse)  # stable: ties keep the tiebreak order
    return [r for _, r in present] + missing


def _first(t: tuple[Any, Any]) -> Any:
    return t[0]
