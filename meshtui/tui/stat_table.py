"""The live stat table: the virtual table with stat's columns."""

from __future__ import annotations

from functools import partial
from typing import Any

from meshtui.model.columns import STAT_COLUMNS, stat_columns
from meshtui.model.stats import StatRow, by_name
from meshtui.tui.cells import Cell, cell
from meshtui.tui.table import Column, VirtualTable


def stat_column(name: str) -> Column:
    c = STAT_COLUMNS[name]
    # Columns without a fixed width (names) are measured by their text.
    return Column(name, cell=partial(_cell, name), sort=c.raw, width=c.width,
                  text=c.text if not c.width else None, numeric=c.numeric)


def _cell(name: str, row: StatRow) -> Cell:
    return cell(row, name)


def _key(r: StatRow) -> tuple[str, str, str]:
    return r.key


class StatTable(VirtualTable):
    """Golden metrics, one row per resource, sortable by any column."""

    def __init__(self, kind: str, *, all_namespaces: bool, wide: bool = False,
                 sort_column: str = "NAME", reverse: bool = False, **kwargs: Any) -> None:
        cols = [stat_column(n) for n in stat_columns(kind, all_namespaces=all_namespaces,
                                                    wide=wide)]
        super().__init__(cols, key=_key, tiebreak=by_name, sort_column=sort_column,
                         reverse=reverse, **kwargs)
        self.kind = kind

    def row_names(self) -> list[str]:
        """Names in display order (what a user reads down the NAME column)."""
        return [r.name for r in self.rows]
