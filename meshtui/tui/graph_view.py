"""A namespace's call graph in the terminal: workloads as boxes, calls as arrows
coloured by success (the layout is :mod:`meshtui.model.graph`'s; this draws it).

Arrow keys move between boxes; Enter drills into the selected workload's pods,
as Enter on a row of the table does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from typing import cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from meshtui.client.queries import EdgeQuery, StatQuery
from meshtui.client.source import Source
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.edges import EdgeRow
from meshtui.model.graph import BOX_HEIGHT, Layout, cells, layout
from meshtui.model.units import format_success
from meshtui.tui.cells import success_style

NodeKey = tuple[str, str]  # (namespace, deployment)


class GraphView(Widget, can_focus=True):
    """The drawn graph; posts :class:`GraphView.Chosen` on Enter."""

    BINDINGS = [Binding("left,up", "move(-1)", "Previous", show=False),
                Binding("right,down", "move(1)", "Next", show=False),
                Binding("enter", "choose", "Drill down")]

    class Chosen(Message):
        def __init__(self, key: Hashable) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph: Layout = layout([], [])
        self.edges: dict[tuple[Hashable, Hashable], EdgeRow] = {}
        self.selected = 0

    def show(self, nodes: Sequence[tuple[Hashable, str]], edges: Sequence[EdgeRow],
             key_of: dict[int, tuple[Hashable, Hashable]]) -> None:
        """New figures: ``key_of`` maps each edge's index to its (caller, callee) keys."""
        chosen = self.selected_key
        self.edges = {key_of[i]: e for i, e in enumerate(edges)}
        self.graph = layout(nodes, list(self.edges))
        keys = [b.key for b in self.graph.boxes]
        self.selected = keys.index(chosen) if chosen in keys else 0
        self.refresh(layout=True)

    @property
    def selected_key(self) -> Hashable | None:
        boxes = self.graph.boxes
        return boxes[self.selected].key if boxes and self.selected < len(boxes) else None

    def get_content_width(self, container: object, viewport: object) -> int:
        return max(self.graph.width, 1)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(self.graph.height + 1, 1)

    def render(self) -> Text:
        g = self.graph
        if not g.boxes:
            return Text("No workloads in this namespace.", style="dim")
        grid = [[(" ", "")] * (g.width + 1) for _ in range(g.height + 1)]
        drawn = []
        for (src, dst), e in self.edges.items():
            route = next((r for r in g.routes if (r.src, r.dst) == (src, dst)), None)
            if route is None:
                continue
            style = success_style(e.success) or "green"
            for x, y, ch in cells(route):
                if 0 <= y < len(grid) and 0 <= x < len(grid[y]):
                    grid[y][x] = (ch, style)
            drawn.append((route, format_success(e.success), style))
        for route, label, style in drawn:
            # The success rate above the arrow: by its head, where calls from one caller
            # part, or else by its tail; whole or not at all (labels must not mix).
            (x1, y1), (x0, y0) = route.points[-1], route.points[0]
            for x, y in ((x1 - len(label), y1 - 1), (x0 + 1, y0 - 1)):
                if self._free(grid, x, y, len(label)):
                    for i, ch in enumerate(label):
                        grid[y][x + i] = (ch, style)
                    break
        for i, b in enumerate(g.boxes):
            style = "reverse bold" if i == self.selected and self.has_focus else (
                "bold" if i == self.selected else "")
            inner = b.width - 2
            rows = ["┌" + "─" * inner + "┐", "│" + b.label.center(inner) + "│",
                    "└" + "─" * inner + "┘"]
            for dy, line in enumerate(rows[:BOX_HEIGHT]):
                for dx, ch in enumerate(line):
                    grid[b.y + dy][b.x + dx] = (ch, style)
        for (src, dst), e in self.edges.items():
            own = g.box(src) if src == dst else None
            if own is None:
                continue
            # A workload calling itself (its pods one another): a loop mark under its
            # box with the success rate, or the mark alone on its border.
            style = success_style(e.success) or "green"
            mark = f"↻ {format_success(e.success)}"
            x, y = (own.x, own.y + BOX_HEIGHT) if self._free(grid, own.x, own.y + BOX_HEIGHT,
                                                         len(mark)) else (own.x + 1, -1)
            if y < 0:
                mark, y = "↻", own.y + BOX_HEIGHT - 1
            for i, ch in enumerate(mark):
                grid[y][x + i] = (ch, style)
        out = Text(no_wrap=True, overflow="crop")
        for row in grid:
            for ch, style in row:
                out.append(ch, style)
            out.append("\n")
        return out

    def _free(self, grid: list[list[tuple[str, str]]], x: int, y: int, n: int) -> bool:
        return 0 <= y < len(grid) and x >= 0 and x + n <= len(grid[0]) and all(
            grid[y][x + i][0] == " " and self.graph.box_at(x + i, y) is None
            for i in range(n))

    def action_move(self, step: int) -> None:
        n = len(self.graph.boxes)
        if n:
            self.selected = (self.selected + step) % n
            self.refresh()

    def action_choose(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.Chosen(key))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


class GraphScreen(Screen[None]):
    """``g`` on a namespace: its deployments and the calls between them, refreshed live."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, source: Source, namespace: str, shown: str, *, interval: float = 1.0,
                 clock=time.time) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.source = source
        self.namespace = namespace  # as the source knows it
        self.shown = shown  # as it is shown
        self.interval = interval
        self.clock = clock
        self.crumbs = ("overview", shown, "graph")

    def compose(self) -> ComposeResult:
        yield Static(" › ".join(self.crumbs), id="crumbs", markup=False)
        yield GraphView(id="graph")
        yield Static("", id="status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(GraphView).focus()
        self.refresh_loop()

    @work(exclusive=True, group="graph", exit_on_error=False)
    async def refresh_loop(self) -> None:
        status = self.query_one("#status", Static)
        while True:
            try:
                snap = await self.source.stats(StatQuery("deployment", self.namespace))
                edges = await self.source.edges(EdgeQuery("deployment", self.namespace))
                self._show(snap.rows, edges)
                calls = "1 call" if len(edges) == 1 else f"{len(edges)} calls"
                deps = "1 deployment" if len(snap.rows) == 1 else f"{len(snap.rows)} deployments"
                status.update(f"{calls} between {deps}; "
                              "arrows: green ≥ 99 % success, yellow ≥ 95 %, red below")
            except (RuntimeFailure, UsageError, OSError) as e:
                status.update(f"cannot read the graph: {e}")
            await asyncio.sleep(self.interval)

    def _show(self, rows: Sequence, edges: Sequence[EdgeRow]) -> None:  # type: ignore[type-arg]
        nodes: dict[NodeKey, str] = {(r.namespace, r.name): r.name for r in rows}
        key_of: dict[int, tuple[Hashable, Hashable]] = {}
        for i, e in enumerate(edges):
            for ns, name in (e.src_key, e.dst_key):
                nodes.setdefault((ns, name), name if ns == self.shown else f"{ns}/{name}")
            key_of[i] = (e.src_key, e.dst_key)
        self.query_one(GraphView).show(list(nodes.items()), edges, key_of)

    def on_graph_view_chosen(self, event: GraphView.Chosen) -> None:
        from meshtui.tui.dashboard import DashStatScreen

        key = cast(NodeKey, event.key)
        ns, name = key
        query = StatQuery("pod", ns, owner=name)
        self.app.push_screen(DashStatScreen(self.source, query, interval=self.interval,
                                            crumbs=("overview", ns, name, "pods"),
                                            clock=self.clock))
