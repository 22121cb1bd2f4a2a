"""The dashboard: the whole mesh at a glance, then down to one pod.

The overview lists every namespace with how much of it is meshed and its
live golden metrics, under a line on the controller's and the proxies'
health. Enter drills namespace → deployments → pods (the live stat table,
breadcrumbs on top, Escape back up); on any row ``c``, ``t`` and ``o`` open
that resource's charts, tap feed and top routes (:mod:`.resource_views`); ``g``
on a namespace draws its call graph (:mod:`.graph_view`).
The command palette (Ctrl+P) jumps to any namespace, deployment or pod.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from meshtui.client.queries import StatQuery, StatSnapshot
from meshtui.client.source import Source
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.stats import StatRow, by_name
from meshtui.tui.cells import Cell
from meshtui.tui.resource_views import (
    HISTORY_REFRESH_S,
    VIEW_BINDINGS,
    Target,
    chart_range,
    history_query,
    make_view,
    show_history,
    time_charts,
)
from meshtui.tui.stat_screen import StatScreen, seen
from meshtui.tui.stat_table import StatTable, stat_column
from meshtui.tui.table import Column, VirtualTable

# ---- meshed state ------------------------------------------------------------

FULLY, PARTLY, NOT = "fully meshed", "partly meshed", "not meshed"
STATE_STYLE = {FULLY: ("●", "green"), PARTLY: ("◐", "yellow"), NOT: ("○", "red")}


def meshed_state(row: StatRow) -> str:
    """Fully meshed (every pod's proxy answers), partly, or not meshed (none does)."""
    if row.total and row.meshed >= row.total:
        return FULLY
    return PARTLY if row.meshed else NOT


def _state_cell(row: StatRow) -> Cell:
    state = meshed_state(row)
    mark, style = STATE_STYLE[state]
    return Cell(f"{mark} {state}", state, style)


def _state_sort(row: StatRow) -> tuple[float, int]:
    return (row.meshed / row.total if row.total else 0.0, row.total)


STATE_COLUMN = Column("STATE", cell=_state_cell, sort=_state_sort, width=15)
OVERVIEW_COLUMNS = ["NAME", "STATE", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95",
                    "LATENCY_P99", "TCP_CONN"]


class NamespaceTable(StatTable):
    """The overview's table: stat's namespace columns plus the meshed state."""

    def __init__(self, **kwargs: object) -> None:
        cols = [STATE_COLUMN if n == "STATE" else stat_column(n) for n in OVERVIEW_COLUMNS]
        VirtualTable.__init__(self, cols, key=_row_key, tiebreak=by_name, sort_column="NAME",
                              **kwargs)  # type: ignore[arg-type]
        self.kind = "namespace"


def _row_key(r: StatRow) -> tuple[str, str, str]:
    return r.key


# ---- health ------------------------------------------------------------------


def health_text(source: str, state: str, snap: StatSnapshot | None, now: float) -> Text:
    """The source's and the proxies' health, in one line (``source``: its label,
    such as ``controller 127.0.0.1:8086``).

    Green when the controller answers, every proxy answers and the last
    scrape is recent; yellow when some proxy is down or scrapes lag; red
    when the controller does not answer.
    """
    kind, _, where = source.partition(" ")
    up = state == "connected"
    scrape_age = (now - snap.last_scrape) if snap and snap.last_scrape else None
    lagging = scrape_age is None or scrape_age > 10
    down = snap is not None and snap.proxies_reachable < snap.proxies_total
    level = "red" if not up else ("yellow" if down or lagging else "green")
    # Spaces end spans, never start them: SVG screenshots drop leading ones.
    parts: list[list[tuple[str, str]]] = [[
        ("● ", f"bold {level}"), (f"{kind} ", "bold"), (f"{where} ", ""),
        ("up " if up else f"{state} ", "green" if up else "bold red")]]
    if snap is not None:
        proxies = [("proxies ", "bold"),
                   (f"{snap.proxies_reachable}/{snap.proxies_total} reachable ",
                    "bold yellow" if down else "green")]
        if down:
            proxies.append((f"({snap.proxies_total - snap.proxies_reachable} down) ",
                            "bold yellow"))
        parts.append(proxies)
        parts.append([("last scrape ", "bold"),
                      ("never " if scrape_age is None else f"{max(scrape_age, 0.0):.1f}s ago ",
                       "bold yellow" if lagging else "")])
        rows = snap.rows
        parts.append([("pods ", "bold"),
                      (f"{sum(r.meshed for r in rows)}/{sum(r.total for r in rows)} meshed ", "")])
        states = [meshed_state(r) for r in rows]
        ns: list[tuple[str, str]] = [("namespaces ", "bold")]
        for i, st in enumerate((FULLY, PARTLY, NOT)):
            ns.append((f"{states.count(st)} {st.split()[0] if i < 2 else st} ",
                       STATE_STYLE[st][1]))
            if i < 2:
                ns.append(("· ", "dim"))
        parts.append(ns)
    t = Text(" ")
    for i, part in enumerate(parts):
        if i:
            t.append("│ ", style="dim")
        for text, style in part:
            t.append(text, style=style)
    return t


# ---- screens -----------------------------------------------------------------


class DashStatScreen(StatScreen):
    """One level of the drill-down (deployments or pods), with the resource views' keys."""

    BINDINGS = [*VIEW_BINDINGS]
    COMMANDS = {lambda: DashboardCommands}  # type: ignore[dict-item]

    def target(self) -> Target | None:
        row: StatRow | None = self.table.selected_row
        if row is None:
            return None
        return Target.of(row, crumbs=self.crumbs, interval=self.interval, clock=self.clock)

    def action_view(self, view: str) -> None:
        target = self.target()
        if target is not None:
            self.app.push_screen(make_view(self.source, target, view))

    def child_screen(self, query: StatQuery, crumbs: tuple[str, ...]) -> StatScreen:
        return DashStatScreen(self.source, query, interval=self.interval, wide=self.wide,
                              crumbs=crumbs, clock=self.clock)


class OverviewScreen(DashStatScreen):
    """Every namespace: meshed or not, live metrics, and the selected one's charts
    (the last 15 minutes unless `z` or --span say otherwise); the mesh's health on top."""

    # The top of the dashboard: nothing to go back to, so the footer does not offer it.
    BINDINGS = [Binding("escape", "back", "Back", show=False),
                Binding("z", "app.zoom", "Span"),
                Binding("g", "graph", "Graph")]

    def __init__(self, source: Source, *, interval: float = 1.0, clock=time.time) -> None:  # type: ignore[no-untyped-def]
        super().__init__(source, StatQuery("namespace"), interval=interval,
                         crumbs=("overview",), clock=clock)
        self._charted: tuple[str, str, str] | None = None
        self._wake = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield Static("", id="health")
        yield Static(self._crumb_text(), id="crumbs")
        yield NamespaceTable(id="stat-table")
        with Horizontal(id="overview-charts"):
            yield from time_charts()
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self._update_health()
        self.chart_loop()

    @work(exclusive=True, group="overview-charts", exit_on_error=False)
    async def chart_loop(self) -> None:
        """The selected namespace's history, again every few seconds or on a new selection."""
        while True:
            row = self.table.selected_row
            if row is not None and seen(self):
                try:
                    rng = chart_range(self)
                    hist = await self.source.history(
                        history_query(self, StatQuery("namespace", row.query_name,
                                                      row.query_name)),
                        rng.span_s, rng.step_s)
                except (RuntimeFailure, UsageError, OSError):
                    hist = None
                if hist is not None and self.table.selected_key == row.key:
                    self._charted = row.key
                    show_history(self, hist.get(row.key, []), self.clock(), who=row.name)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), HISTORY_REFRESH_S)
                await asyncio.sleep(0.15)  # a key held down: fetch for where it stops
            except TimeoutError:
                pass

    def refresh_history(self) -> None:
        """Fetches the selected namespace's history again at once (the span changed)."""
        self._wake.set()

    def apply(self, snap: StatSnapshot) -> None:
        first = self.snapshot is None
        super().apply(snap)
        if first and snap.rows:
            # Start on the busiest namespace: its charts say something at once.
            busiest = max(self.table.rows, key=lambda r: r.rps or 0.0)
            self.table.select_index(self.table.rows.index(busiest))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        row = event.row
        if row is not None and row.key != self._charted:
            self._wake.set()

    def load_history(self, row: StatRow) -> None:  # type: ignore[override]
        """The charts fetch their own history (chart_loop): no sparklines here."""

    def _update_sparks(self) -> None:
        pass

    def _update_status(self) -> None:
        super()._update_status()
        self._update_health()

    def _update_health(self) -> None:
        self.query_one("#health", Static).update(
            health_text(self.source.label, self.state, self.snapshot, self.clock()),
            layout=False)

    def child_screen(self, query: StatQuery, crumbs: tuple[str, ...]) -> StatScreen:
        return DashStatScreen(self.source, query, interval=self.interval, wide=self.wide,
                              crumbs=crumbs, clock=self.clock)

    def action_graph(self) -> None:
        """The selected namespace's call graph."""
        from meshtui.tui.graph_view import GraphScreen

        row = self.table.selected_row
        if row is not None:
            self.app.push_screen(GraphScreen(self.source, row.query_name, row.name,
                                             interval=self.interval, clock=self.clock))


# ---- command palette -----------------------------------------------------------


class DashboardCommands(Provider):
    """Ctrl+P: open any namespace, or any deployment's or pod's charts, tap or top."""

    async def startup(self) -> None:
        screen = self.screen
        self.source: Source | None = getattr(screen, "source", None)
        self.rows: list[StatRow] = []
        if self.source is None:
            return
        for kind in ("namespace", "deployment", "pod"):
            try:
                snap = await self.source.stats(StatQuery(kind))
            except (RuntimeFailure, UsageError, OSError):
                continue
            self.rows.extend(snap.rows)

    def _commands(self) -> list[tuple[str, str, object]]:
        out: list[tuple[str, str, object]] = []
        for r in self.rows:
            if r.kind == "namespace":
                out.append((f"open namespace {r.name}", "its deployments",
                            partial(self._open_namespace, r)))
            what = Target(r.kind, r.namespace, r.name).label
            for view, help_text in (("charts", "RPS, success and latency, 15 minutes"),
                                    ("tap", "live requests"), ("top", "busiest routes")):
                out.append((f"{view} {what}", help_text, partial(self._open_view, r, view)))
        return out

    async def discover(self) -> Hits:
        for text, help_text, run in self._commands():
            if text.startswith("open namespace"):
                yield DiscoveryHit(text, run, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, run in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, text=text,  # type: ignore[arg-type]
                          help=help_text)

    def _interval_clock(self) -> tuple[float, object]:
        screen = self.screen
        return getattr(screen, "interval", 1.0), getattr(screen, "clock", time.time)

    def _open_namespace(self, row: StatRow) -> None:
        assert self.source is not None
        interval, clock = self._interval_clock()
        query = StatQuery("deployment", row.query_name)
        self.app.push_screen(DashStatScreen(self.source, query, interval=interval,
                                            crumbs=("overview", row.name, "deployments"),
                                            clock=clock))  # type: ignore[arg-type]

    def _open_view(self, row: StatRow, view: str) -> None:
        assert self.source is not None
        interval, clock = self._interval_clock()
        if row.kind == "namespace":
            crumbs: tuple[str, ...] = ("overview",)
        elif row.kind == "deployment":
            crumbs = ("overview", row.namespace, "deployments")
        else:
            crumbs = ("overview", row.namespace, "pods")
        target = Target.of(row, crumbs=crumbs, interval=interval, clock=clock)
        self.app.push_screen(make_view(self.source, target, view))

