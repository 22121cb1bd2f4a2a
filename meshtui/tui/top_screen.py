"""``meshtui top``: the busiest routes, from tap, as a live sortable table.

Tap events stream in (a worker joins their steps in a bounded tracker and
counts each finished request in a bounded route table); the table shows a
snapshot of the routes once a second, sorted by count unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from meshtui.client.queries import TapQuery
from meshtui.client.source import Source
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.columns import ROUTE_COLUMNS, route_columns
from meshtui.model.feed_filter import FeedFilter
from meshtui.model.routes import DEFAULT_BY, GROUPS, RouteRow, RouteTable
from meshtui.model.tap import RequestTracker
from meshtui.tui.cells import Cell, success_style
from meshtui.tui.table import Column, VirtualTable


def _cell(name: str, r: RouteRow) -> Cell:
    col = ROUTE_COLUMNS[name]
    style = success_style(r.success_rate) if name == "SUCCESS" else ""
    return Cell(col.text(r), None, style)


def _key(r: RouteRow) -> Any:
    return r.key


def _tiebreak(r: RouteRow) -> Any:
    return r.key


def top_columns(by: Sequence[str] = DEFAULT_BY) -> list[Column]:
    return [Column(c.name, cell=partial(_cell, c.name), sort=c.raw, width=c.width,
                   text=c.text if not c.width else None, numeric=c.numeric)
            for c in map(ROUTE_COLUMNS.__getitem__, route_columns(by))]


#: What ``b`` steps through, after the grouping the screen opened with.
GROUPINGS: tuple[tuple[str, ...], ...] = (
    DEFAULT_BY, ("dst", "path"), ("src", "dst"), ("dst", "status"),
    ("authority", "path", "status"), GROUPS)


class TopScreen(Screen[None]):
    BINDINGS = [
        Binding("s", "sort_next", "Sort"),
        Binding("r", "sort_reverse", "Reverse"),
        Binding("b", "group_next", "Group by"),
        Binding("c", "clear", "Clear"),
    ]

    def __init__(self, source: Source, query: TapQuery, *, title: str = "",
                 interval: float = 1.0, filter_text: str = "",
                 by: Sequence[str] | None = None) -> None:
        super().__init__()
        self.by = tuple(by or DEFAULT_BY)
        self.groupings = (self.by, *(g for g in GROUPINGS if g != self.by))
        # --filter: only the requests it passes are counted
        self.filter = FeedFilter.parse(filter_text)
        self.source = source
        self.tap_query = query
        self.title_text = title or "top"
        self.interval = interval
        self.tracker = RequestTracker(capacity=50_000)
        self.routes = RouteTable(max_routes=10_000)
        self.received = 0
        self.lost = 0
        self.state = "connecting"

    def compose(self) -> ComposeResult:
        yield Static(Text(f" {self.title_text}", style="bold"), id="crumbs")
        yield VirtualTable(top_columns(self.by), key=_key, tiebreak=_tiebreak, sort_column="COUNT",
                           reverse=True, id="top-table")
        yield Static("", id="status")
        yield Footer()

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.intake()
        self.set_interval(self.interval, self.redraw)

    @work(exclusive=True, group="top-intake", exit_on_error=False)
    async def intake(self) -> None:
        test = self.filter.test
        try:
            async for batch in self.source.tap(self.tap_query):
                self.state = "streaming"
                for ev in batch.events:
                    req = self.tracker.observe(ev)
                    if req.complete and test(req):
                        self.routes.observe(req)
                self.received += len(batch.events)
                self.lost += sum(batch.drops.values())
            self.state = "stream ended"
        except (RuntimeFailure, UsageError) as e:
            self.state = f"error: {e}"
        self.redraw()

    def redraw(self) -> None:
        rows = self.routes.snapshot(by=self.by)
        self.table.show(rows)
        parts = [f" {len(rows):,} rows by {','.join(self.by)}", f"{self.received:,} events"]
        if self.filter:
            parts.append(f"filter: {self.filter}")
        if self.lost:
            parts.append(f"lost {self.lost:,}")
        parts.append(f"sort {self.table.sort_column} {'▼' if self.table.reverse else '▲'}")
        if self.state != "streaming":
            parts.append(self.state)
        parts.append(f"from {self.source.tap_label}")
        style = "bold yellow" if self.state.startswith("error") else ""
        self.query_one("#status", Static).update(Text("  │  ".join(parts), style=style),
                                                 layout=False)

    def action_sort_next(self) -> None:
        self.table.action_next_sort()
        self.redraw()

    def action_sort_reverse(self) -> None:
        self.table.action_reverse_sort()
        self.redraw()

    def action_group_next(self) -> None:
        """The next grouping: the counts stay, only the rows they fall in change."""
        at = self.groupings.index(self.by)
        self.by = self.groupings[(at + 1) % len(self.groupings)]
        self.table.set_columns(top_columns(self.by))
        self.redraw()

    def action_clear(self) -> None:
        self.routes.clear()
        self.redraw()
