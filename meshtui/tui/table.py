"""A live, sortable table: a virtual view over one sorted snapshot.

A refresh replaces the rows, sorts them once on their raw values (so
"12.3rps" sorts as 12.3 and "-" goes last whichever way the column is
ordered) and redraws; only the rows on screen are ever formatted. Ten
thousand rows refresh in a few milliseconds this way, where updating a
``DataTable`` cell by cell costs a large share of a core. The selected row is
followed by its key across refreshes, so it stays selected when rows move.
The stat table and the top table are this widget with their own columns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from meshtui.model.ordering import sort_by
from meshtui.tui.cells import Cell

GAP = 2


@dataclass(frozen=True)
class Column:
    """One column: how to show a row's value, and the raw value it sorts on.

    Attributes:
        width: fixed width; 0 fits the longest ``text`` of the rows (up to 63).
        numeric: sorting it first puts the biggest on top.
    """

    name: str
    cell: Callable[[Any], Cell]
    sort: Callable[[Any], Any]
    width: int = 0
    text: Callable[[Any], str] | None = None
    numeric: bool = True


class VirtualTable(ScrollView, can_focus=True):
    """Rows of one snapshot, sortable by any column, drawn only where visible."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("enter", "select", "Select", show=False),
        Binding("ctrl+s", "save", "Save table", show=False),
    ]
    DEFAULT_CSS = """
    VirtualTable { background: $surface; }
    VirtualTable > .vtable--header { text-style: bold; background: $primary-background; }
    VirtualTable > .vtable--cursor { background: $accent 50%; }
    VirtualTable > .vtable--stripe { background: $boost; }
    """
    COMPONENT_CLASSES = {"vtable--header", "vtable--cursor", "vtable--stripe"}

    class Highlighted(Message):
        """The cursor moved to another row (or the row under it changed)."""

        def __init__(self, row: Any) -> None:
            super().__init__()
            self.row = row

    class Selected(Message):
        """Enter (or a click) on a row."""

        def __init__(self, row: Any) -> None:
            super().__init__()
            self.row = row

    def __init__(self, columns: Sequence[Column], *, key: Callable[[Any], Hashable],
                 tiebreak: Callable[[Any], Any], sort_column: str, reverse: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = list(columns)
        self.column_names = [c.name for c in self.columns]
        self.row_key = key
        self.tiebreak = tiebreak
        self.sort_column = sort_column if sort_column in self.column_names else self.column_names[0]
        self.reverse = reverse
        self.rows: list[Any] = []  # in display order
        self.cursor = 0
        self._selected_key: Hashable | None = None
        self._widths = [max(len(c.name) + 2, c.width) for c in self.columns]
        self._parsed: dict[str, Style] = {}
        self._line_styles_key: tuple[object, ...] | None = None
        self._line_styles_cache: tuple[Style, Style, Style, Style] = (Style(),) * 4

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Shows other columns (``top``'s grouping changed); the sort stays if it can."""
        self.columns = list(columns)
        self.column_names = [c.name for c in self.columns]
        if self.sort_column not in self.column_names:
            self.sort_column = self.column_names[0]
        self._widths = [max(len(c.name) + 2, c.width) for c in self.columns]
        self.refresh()

    # ---- data ----------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def selected_row(self) -> Any:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    @property
    def selected_key(self) -> Hashable | None:
        row = self.selected_row
        return self.row_key(row) if row is not None else None

    def show(self, rows: Sequence[Any]) -> None:
        """Makes the table show exactly ``rows``, keeping the selected row selected."""
        keep = self._selected_key
        col = self.columns[self.column_names.index(self.sort_column)]
        self.rows = sort_by(rows, col.sort, reverse=self.reverse, tiebreak=self.tiebreak)
        self._fit_widths()
        self._restore(keep)
        self.virtual_size = Size(sum(self._widths) + GAP * len(self._widths), len(self.rows) + 1)
        self.refresh()
        self.post_message(self.Highlighted(self.selected_row))

    def _fit_widths(self) -> None:
        for i, col in enumerate(self.columns):
            if col.width == 0 and col.text is not None:
                text = col.text
                longest = max((len(text(r)) for r in self.rows), default=0)
                self._widths[i] = max(len(col.name) + 2, min(longest, 63))

    def _restore(self, key: Hashable | None) -> None:
        if key is not None:
            row_key = self.row_key
            for i, r in enumerate(self.rows):
                if row_key(r) == key:
                    self.cursor = i
                    return
        self.cursor = min(self.cursor, max(len(self.rows) - 1, 0))
        self._selected_key = self.selected_key

    def column_values(self, name: str) -> list[str]:
        """The text of one column, top to bottom (what a user reads down it)."""
        col = self.columns[self.column_names.index(name)]
        return [col.cell(r).text for r in self.rows]

    def shown_text(self) -> tuple[list[str], list[list[str]]]:
        """The headers and every row's text, in the order shown."""
        cols = self.columns
        return self.column_names, [[c.cell(r).text for c in cols] for r in self.rows]

    def action_save(self) -> None:
        """Asks for a path, then writes what the table shows as CSV or JSON (by its
        extension) and says where."""
        from meshtui.output.table_file import TableFormatError, write_table
        from meshtui.tui.save_prompt import SavePrompt

        header, rows = self.shown_text()  # what is shown now, not after the question

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                kind = write_table(path, header, rows)
            except (OSError, TableFormatError) as e:
                why = e.strerror if isinstance(e, OSError) else str(e)
                self.notify(f"could not write {path}: {why}", severity="error", markup=False)
                return
            self.notify(f"wrote {len(rows):,} rows as {kind.upper()} to {os.path.abspath(path)}",
                        markup=False)

        default = time.strftime("table-%Y%m%d-%H%M%S.csv")
        self.app.push_screen(SavePrompt("Write this table to (.csv or .json):", default), done)

    # ---- sorting -------------------------------------------------------------

    def set_sort(self, column: str) -> None:
        """Sorts by ``column``; choosing the same column again reverses the order."""
        if column == self.sort_column:
            self.reverse = not self.reverse
        else:
            self.sort_column = column
            self.reverse = self.columns[self.column_names.index(column)].numeric
        self.show(self.rows)

    def action_next_sort(self) -> None:
        i = self.column_names.index(self.sort_column)
        self.set_sort(self.column_names[(i + 1) % len(self.column_names)])

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort_column)

    # ---- cursor --------------------------------------------------------------

    def select_index(self, index: int) -> None:
        if not self.rows:
            return
        before = self.cursor
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._selected_key = self.selected_key
        body = self.size.height - 1
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
            self.refresh()
        elif self.cursor >= top + body:
            self.scroll_to(y=self.cursor - body + 1, animate=False)
            self.refresh()
        else:
            # Only the two rows whose look changed: a tall table is costly to repaint.
            for i in {before, self.cursor}:
                self.refresh(Region(0, i - top + 1, self.size.width, 1))
        self.post_message(self.Highlighted(self.selected_row))

    def action_cursor(self, delta: int) -> None:
        self.select_index(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.select_index(self.cursor + direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self.select_index(len(self.rows) - 1 if end else 0)

    def action_select(self) -> None:
        row = self.selected_row
        if row is not None:
            self.post_message(self.Selected(row))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:  # the header: sort by the column under the pointer
            x = event.x + self.scroll_offset.x
            for name, width in zip(self.column_names, self._widths, strict=True):
                if x < width + GAP:
                    self.set_sort(name)
                    return
                x -= width + GAP
            return
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain >= 2:
                self.action_select()
            self.select_index(index)

    # ---- drawing -------------------------------------------------------------

    def _header_text(self) -> Text:
        t = Text(no_wrap=True)
        for name, width in zip(self.column_names, self._widths, strict=True):
            label = name
            if name == self.sort_column:
                label = f"{name} {'▼' if self.reverse else '▲'}"
            t.append(label.ljust(width + GAP)[: width + GAP])
        return t

    def _row_segments(self, row: Any) -> list[Segment]:
        # Segments straight from the cells (no Text to lay out): a sort or a
        # page repaints every visible row.
        segments = []
        style_of = self._cell_style
        for col, width in zip(self.columns, self._widths, strict=True):
            c = col.cell(row)
            text = c.text if len(c.text) <= width else c.text[: width - 1] + "…"
            # Padding inside the styled span: SVG screenshots drop bare whitespace spans.
            segments.append(Segment(text.ljust(width + GAP), style_of(c.style)))
        return segments

    def _cell_style(self, name: str) -> Style | None:
        if not name:
            return None
        style = self._parsed.get(name)
        if style is None:
            style = self._parsed[name] = Style.parse(name)
        return style

    def _line_styles(self) -> tuple[Style, Style, Style, Style]:
        """(widget, header, cursor, stripe) styles, looked up once per theme and focus."""
        key = (self.app.theme, self.has_focus, self.styles.background)
        if self._line_styles_key != key:
            stripe = self.get_component_rich_style("vtable--stripe").bgcolor
            self._line_styles_cache = (
                self.rich_style, self.get_component_rich_style("vtable--header"),
                self.get_component_rich_style("vtable--cursor"), Style(bgcolor=stripe))
            self._line_styles_key = key
        return self._line_styles_cache

    def _strip(self, segments: list[Segment], base: Style, post: Style | None = None) -> Strip:
        """One line: the widget's style under the segments' own, ``post`` over both."""
        x = self.scroll_offset.x
        width = self.size.width
        strip = Strip(segments).crop(x, x + width).extend_cell_length(width)
        return Strip(Segment.apply_style(strip, style=base, post_style=post))

    def render_line(self, y: int) -> Strip:
        base, header, cursor, stripe = self._line_styles()
        if y == 0:
            text = self._header_text()
            return self._strip([s for s in text.render(self.app.console) if s.text != "\n"],
                               base, header)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.rows):
            return Strip.blank(self.size.width, base)
        # The cursor's look, or only the stripe's background: cells keep their colours.
        post = cursor if index == self.cursor else (stripe if index % 2 else None)
        return self._strip(self._row_segments(self.rows[index]), base, post)
