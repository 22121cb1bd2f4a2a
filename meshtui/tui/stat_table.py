"""The live stat table: the virtual table with stat's columns."""

from __future__ import annotations

from functools import partial
from typing import Any

from meshtui.model.stats import COLUMNS, StatRow, by_name
from meshtui.tui.cells import Cell, cell, columns_for
from meshtui.tui.table import Column, VirtualTable

# Widths of the fixed columns (the header is never wider); NAME and NAMESPACE
# take the width of their longest value.
WIDTHS = {"MESHED": 7, "SUCCESS": 8, "RPS": 10, "LATENCY_P50": 11, "LATENCY_P95": 11,
          "LATENCY_P99": 11, "TCP_CONN": 8, "READ_BYTES/SEC": 14, "WRITE_BYTES/SEC": 15}
TEXT = {"NAME": lambda r: r.name, "NAMESPACE": lambda r: r.namespace}


def stat_column(name: str) -> Column:
    return Column(name, cell=partial(_cell, name), sort=COLUMNS[name],
                  width=WIDTHS.get(name, 0), text=TEXT.get(name),
                  numeric=name not in TEXT)


def _cell(name: str, row: StatRow) -> Cell:
    return cell(row, name)


def _key(r: StatRow) -> tuple[str, str, str]:
    return r.key


class StatTable(VirtualTable):
    """Golden metrics, one row per resource, sortable by any column."""

    def __init__(self, kind: str, *, all_namespaces: bool, wide: bool = False,
                 sort_column: str = "NAME", reverse: bool = False, **kwargs: Any) -> None:
        cols = [stat_column(n) for n in columns_for(kind, all_namespaces=all_namespaces,
                                                    wide=wide)]
        super().__init__(cols, key=_key, tiebreak=by_name, sort_column=sort_column,
                         reverse=reverse, **kwargs)
        self.kind = kind

    def row_names(self) -> list[str]:
        """Names in display order (what a user reads down the NAME column)."""
        return [r.name for r in self.rows]
