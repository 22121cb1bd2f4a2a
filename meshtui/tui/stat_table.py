"""The live stat table: a DataTable updated by row key, sorted on raw numbers.

Each refresh diffs the new snapshot against what is shown: changed cells are
updated in place, vanished rows removed, new rows added, and the table sorted
once — all inside one ``batch_update`` so the screen redraws once. Cells keep
their raw value next to the text, so "12.3rps" sorts as 12.3 and "-" sorts
last whichever way the column is ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from meshtui.model.stats import StatRow
from meshtui.tui.cells import Cell, columns_for, row_cells


def _row_key(key: tuple[str, str, str]) -> str:
    return "\x00".join(key)


class StatTable(DataTable[Cell]):
    """Golden metrics, one row per resource."""

    def __init__(self, kind: str, *, all_namespaces: bool, wide: bool = False,
                 sort_column: str = "NAME", reverse: bool = False, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.kind = kind
        self.column_names = columns_for(kind, all_namespaces=all_namespaces, wide=wide)
        self.sort_column = sort_column if sort_column in self.column_names else "NAME"
        self.reverse = reverse
        self.rows_by_key: dict[str, StatRow] = {}

    def on_mount(self) -> None:
        for name in self.column_names:
            self.add_column(self._header(name), key=name)

    def _header(self, name: str) -> Text:
        if name != self.sort_column:
            return Text(name)
        return Text(f"{name} {'▼' if self.reverse else '▲'}", style="bold")

    @property
    def selected_key(self) -> tuple[str, str, str] | None:
        if not self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        row = self.rows_by_key.get(str(row_key.value))
        return row.key if row else None

    @property
    def selected_row(self) -> StatRow | None:
        key = self.selected_key
        return self.rows_by_key.get(_row_key(key)) if key else None

    def show(self, rows: Sequence[StatRow]) -> None:
        """Makes the table show exactly ``rows``, keeping the selected row selected."""
        keep = self.selected_key
        fresh = {_row_key(r.key): r for r in rows}
        with self.app.batch_update():
            for k in [k for k in self.rows_by_key if k not in fresh]:
                self.remove_row(k)
                del self.rows_by_key[k]
            for k, row in fresh.items():
                cells = row_cells(row, self.column_names)
                old = self.rows_by_key.get(k)
                if old is None:
                    self.add_row(*cells, key=k)
                elif old != row:
                    for name, cell, before in zip(self.column_names, cells,
                                                  row_cells(old, self.column_names), strict=True):
                        if cell.text != before.text:
                            self.update_cell(k, name, cell)
                self.rows_by_key[k] = row
            self._sort()
            if keep is not None and _row_key(keep) in self.rows_by_key:
                self.move_cursor(row=self.get_row_index(_row_key(keep)), animate=False)

    def _sort(self) -> None:
        if not self.row_count:
            return
        reverse = self.reverse

        def key(cell: Cell) -> Any:
            value = cell.raw
            present = value is not None
            # "-" goes last both ways: flip the flag with the direction.
            return (present if reverse else not present, value if present else 0)

        self.sort(self.sort_column, key=key, reverse=reverse)

    def set_sort(self, column: str) -> None:
        """Sorts by ``column``; choosing the same column again reverses the order."""
        if column == self.sort_column:
            self.reverse = not self.reverse
        else:
            self.sort_column = column
            self.reverse = column not in ("NAME", "NAMESPACE")  # numbers: biggest first
        for name in self.column_names:
            self.columns[name].label = self._header(name)  # type: ignore[index]
        with self.app.batch_update():
            self._sort()
        self.refresh()

    def action_next_sort(self) -> None:
        i = self.column_names.index(self.sort_column)
        self.set_sort(self.column_names[(i + 1) % len(self.column_names)])

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort_column)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(str(event.column_key.value))
