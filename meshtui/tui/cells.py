"""Table cells that show text and sort on the raw number behind it."""

from __future__ import annotations

from typing import Any

from rich.text import Text

import meshtui.model.units as units
from meshtui.model.stats import COLUMNS, StatRow


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


BASE = ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99",
        "TCP_CONN"]
WIDE = ["READ_BYTES/SEC", "WRITE_BYTES/SEC"]


def columns_for(kind: str, *, all_namespaces: bool, wide: bool = False) -> list[str]:
    cols = list(BASE)
    if all_namespaces and kind != "namespace":
        cols.insert(0, "NAMESPACE")
    if wide:
        cols += WIDE
    return cols


def _success_style(s: float | None) -> str:
    if s is None:
        return "dim"
    if s >= 0.99:
        return "green"
    if s >= 0.95:
        return "yellow"
    return "bold red"


def cell(row: StatRow, column: str) -> Cell:
    raw = COLUMNS[column](row)
    if column == "NAMESPACE":
        return Cell(row.namespace, row.namespace)
    if column == "NAME":
        return Cell(row.name, row.name, "" if row.reachable else "red")
    if column == "MESHED":
        style = "green" if row.total and row.meshed == row.total else (
            "yellow" if row.meshed else "red")
        return Cell(f"{row.meshed}/{row.total}", raw, style)
    if column == "SUCCESS":
        return Cell(units.format_success(row.success), row.success, _success_style(row.success))
    if column == "RPS":
        return Cell(units.format_rps(row.rps), row.rps)
    if column.startswith("LATENCY_"):
        return Cell(units.format_latency_ms(raw), raw)
    if column == "TCP_CONN":
        return Cell("-" if row.tcp_conn is None else str(row.tcp_conn), row.tcp_conn)
    return Cell(units.format_bytes_rate(raw), raw)


def row_cells(row: StatRow, columns: list[str]) -> list[Cell]:
    return [cell(row, c) for c in columns]
