"""Table cells that show text and sort on the raw number behind it."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from meshtui.model.columns import STAT_COLUMNS
from meshtui.model.stats import StatRow


class Cell:
    """A rendered value plus the raw one it came from (for sorting)."""

    __slots__ = ("raw", "style", "text")

    def __init__(self, text: str, raw: Any, style: str = "") -> None:
        self.text = text
        self.raw = raw
        self.style = style

    def __rich__(self) -> Text:
        # Text, never markup: names and paths are shown literally.
        return Text(self.text, style=self.style, no_wrap=True, overflow="ellipsis")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Cell({self.text!r})"


def success_style(s: float | None) -> str:
    """The colour of a success rate, in every table that shows one."""
    if s is None:
        return "dim"
    if s >= 0.99:
        return "green"
    if s >= 0.95:
        return "yellow"
    return "bold red"


def _meshed_style(row: StatRow) -> str:
    if row.total and row.meshed == row.total:
        return "green"
    return "yellow" if row.meshed else "red"


# How a column's cell is coloured, where it is (the text is the column's own).
_STYLES = {
    "NAME": lambda r: "" if r.reachable else "red",
    "MESHED": _meshed_style,
    "SUCCESS": lambda r: success_style(r.success),
}


def cell(row: StatRow, column: str) -> Cell:
    col = STAT_COLUMNS[column]
    style = _STYLES.get(column)
    return Cell(col.text(row), col.raw(row), style(row) if style else "")
