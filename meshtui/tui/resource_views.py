"""The dashboard's three views of one resource: charts, tap and top, as tabs.

From a table, ``c``, ``t`` and ``o`` open the selected resource's charts,
live tap feed or top routes; within a view the same keys switch to the
other two in place (the table stays underneath), and Escape goes back to
the table. Tap and top are the ``meshtui tap`` / ``meshtui top`` screens,
scoped to the resource.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

import meshtui.model.units as units
from meshtui.client.queries import HistoryPoint, StatQuery, TapQuery
from meshtui.client.source import Source
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.stats import StatRow
from meshtui.tui.chart_data import ChartRange, Series, latency_bins, series_of
from meshtui.tui.charts import COLORS, DistributionChart, TimeChart
from meshtui.tui.tap_screen import TapScreen
from meshtui.tui.top_screen import TopScreen

HISTORY_REFRESH_S = 5.0
SHORT = {"namespace": "ns", "deployment": "deploy", "pod": "po"}
VIEWS = ("charts", "tap", "top")
VIEW_KEYS = {"charts": "c", "tap": "t", "top": "o"}


@dataclass(frozen=True)
class Target:
    """The resource a view shows, and how the dashboard got there."""

    kind: str
    namespace: str
    name: str
    crumbs: tuple[str, ...] = ()
    interval: float = 1.0
    clock: Callable[[], float] = field(default=time.time, compare=False)
    # The names as the source knows them, where they differ from those above
    # (shown cleaned): what the views query with (StatRow's raw_* likewise).
    raw_namespace: str | None = None
    raw_name: str | None = None

    @classmethod
    def of(cls, row: StatRow, **kw: Any) -> Target:
        """The resource of a stat row, names and all (``kw``: the other fields)."""
        return cls(row.kind, row.namespace, row.name, raw_namespace=row.raw_namespace,
                   raw_name=row.raw_name, **kw)

    def _query_names(self) -> tuple[str, str]:
        name = self.name if self.raw_name is None else self.raw_name
        if self.kind == "namespace":
            return name, name
        return (self.namespace if self.raw_namespace is None else self.raw_namespace), name

    @property
    def label(self) -> str:
        """As a user would type it: ``deploy/voting -n emojivoto``."""
        if self.kind == "namespace":
            return f"ns/{self.name}"
        return f"{SHORT[self.kind]}/{self.name} -n {self.namespace}"

    def stat_query(self) -> StatQuery:
        return StatQuery(self.kind, *self._query_names())

    def tap_query(self) -> TapQuery:
        return TapQuery(self.kind, *self._query_names())


def view_crumbs(target: Target, current: str) -> Text:
    """The path to the resource, then the three views as tabs, the current one lit."""
    # Spaces end spans, never start them: SVG screenshots drop leading ones.
    t = Text(" ")
    path = (*target.crumbs, target.name) if target.crumbs else (target.label,)
    for i, c in enumerate(path):
        if i:
            t.append("› ", style="dim")
        t.append(c + " ", style="bold" if i == len(path) - 1 else "")
    t.append("  ")
    for view in VIEWS:
        label = f"{VIEW_KEYS[view]} {view} "
        t.append("▎" + label, style="bold reverse" if view == current else "dim")
        t.append(" ")
    return t


def time_charts() -> list[TimeChart]:
    """The three charts over time every resource gets: rate, success, latency."""
    return [TimeChart("RPS", units.format_rps, id="chart-rps"),
            TimeChart("success", lambda v: f"{v:g}%", floor=0.0, ceiling=100.0, zero=False,
                      minimum_span=2.0, id="chart-success"),
            TimeChart("latency", _latency_tick, id="chart-latency")]


def _latency_tick(ms: float) -> str:
    return "0ms" if ms == 0 else units.format_latency_ms(ms)


def chart_range(screen: Screen[None]) -> ChartRange:
    """What the app's time charts cover (`z` changes it; --since/--until set it)."""
    rng = getattr(screen.app, "chart_range", None)
    return rng if isinstance(rng, ChartRange) else ChartRange()


def history_query(screen: Screen[None], query: StatQuery) -> StatQuery:
    return replace(query, until=chart_range(screen).until)


# What each screen's time charts were last drawn from (see show_history).
_DRAWN: weakref.WeakKeyDictionary[Screen[None], tuple[object, ...]] = weakref.WeakKeyDictionary()


def show_history(screen: Screen[None], points: list[HistoryPoint], now: float,
                 who: str = "") -> None:
    """Draws per-step points into the screen's three time charts (see time_charts);
    ``who`` names the resource in their titles where the screen does not."""
    # The step still in progress holds a few seconds of requests: its rate and
    # success swing widely. The charts end at the last whole step; the "now"
    # line above them gives the current window.
    points = [p for p in points if p.at <= now + 1.0] or points
    # Steps end every 10 s and the history is fetched every 5: a fetch that
    # brings no new step leaves the charts as they are drawn.
    drawn = (who, len(points), points[-1] if points else None, chart_range(screen))
    if _DRAWN.get(screen) == drawn:
        return
    _DRAWN[screen] = drawn
    rng = chart_range(screen)
    if rng.until is not None:
        now = rng.until
    elif points:
        now = max(now, points[-1].at)
    span = rng.span_s
    for chart in screen.query(TimeChart):
        chart.span_s = span
    rps = Series("rps", series_of(points, "rps", now, span), COLORS["rps"])
    succ = Series("success", series_of(points, "success", now, span, scale=100),
                  COLORS["success"])
    lat = [Series(label, series_of(points, f"{label}_ms", now, span), COLORS[label])
           for label in ("p50", "p95", "p99")]
    pre = f"{who} · " if who else ""
    screen.query_one("#chart-rps", TimeChart).show(
        [rps], headline=pre + (f"now {units.format_rps(rps.last)}" if rps.points else ""))
    screen.query_one("#chart-success", TimeChart).show(
        [succ], headline=pre + (f"now {succ.last:.2f}%" if succ.last is not None else ""))
    screen.query_one("#chart-latency", TimeChart).show(lat, headline=pre + "p50 · p95 · p99")


def make_view(source: Source, target: Target, view: str) -> Screen[None]:
    if view == "charts":
        return ChartsScreen(source, target)
    if view == "tap":
        return DashTapScreen(source, target)
    return DashTopScreen(source, target)


VIEW_BINDINGS = [
    Binding("c", "view('charts')", "Charts"),
    Binding("t", "view('tap')", "Tap"),
    Binding("o", "view('top')", "Top"),
]


class _ViewNav:
    """What the three views share: switching between them, and going back."""

    view = ""
    source: Source
    target: Target

    def action_view(self, view: str) -> None:
        if view != self.view:
            self.app.switch_screen(make_view(self.source, self.target, view))  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.pop_screen()  # type: ignore[attr-defined]

    def show_crumbs(self) -> None:
        self.query_one("#crumbs", Static).update(  # type: ignore[attr-defined]
            view_crumbs(self.target, self.view), layout=False)


class ChartsScreen(_ViewNav, Screen[None]):
    """RPS, success rate and latency over the last 15 minutes, and the window's
    latency distribution, for one resource."""

    view = "charts"
    BINDINGS = [*VIEW_BINDINGS, Binding("z", "app.zoom", "Span"),
                Binding("escape", "back", "Back")]

    def __init__(self, source: Source, target: Target) -> None:
        super().__init__()
        self.source = source
        self.target = target
        self.row: StatRow | None = None
        self.history: list[HistoryPoint] = []
        self.state = "connecting"
        self.updated_at: float | None = None
        self.history_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="crumbs")
        yield Static("", id="chart-now")
        with Grid(id="charts"):
            yield from time_charts()
            yield DistributionChart(id="chart-dist")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.show_crumbs()
        self.stats_loop()
        self.history_loop()
        self.set_interval(0.5, self._update_status)

    @work(exclusive=True, group="charts-stats", exit_on_error=False)
    async def stats_loop(self) -> None:
        query = self.target.stat_query()
        while True:
            try:
                snap = await self.source.stats(query)
            except (RuntimeFailure, UsageError, OSError) as e:
                self.state = f"reconnecting: {e}"
                self._update_status()
                await asyncio.sleep(min(self.target.interval * 2, 5.0))
                continue
            self.state = "connected"
            self.updated_at = self.target.clock()
            self.show_now(next((r for r in snap.rows if r.name == self.target.name), None))
            await asyncio.sleep(self.target.interval)

    @work(exclusive=True, group="charts-history", exit_on_error=False)
    async def history_loop(self) -> None:
        query = self.target.stat_query()
        while True:
            try:
                rng = chart_range(self)
                hist = await self.source.history(history_query(self, query), rng.span_s,
                                                 rng.step_s)
            except (RuntimeFailure, UsageError, OSError):
                await asyncio.sleep(HISTORY_REFRESH_S)
                continue
            key = (self.target.kind, "" if self.target.kind == "namespace"
                   else self.target.namespace, self.target.name)
            self.show_history(hist.get(key, []))
            await asyncio.sleep(HISTORY_REFRESH_S)

    def refresh_history(self) -> None:
        """Fetches the history again at once (the charts' span changed)."""
        self.history_loop()

    def show_now(self, row: StatRow | None) -> None:
        """The current window: the headline figures and the distribution."""
        self.row = row
        t = Text(" now ", style="bold")
        if row is None or not row.has_traffic:
            t.append(f"(window {units.format_window(row.window_s if row else 60)}): "
                     "no requests", style="dim")
        else:
            t.append(f"(last {units.format_window(row.window_s)}): ", style="dim")
            for label, value, style in (
                    ("", units.format_rps(row.rps), "bold cyan"),
                    ("success ", units.format_success(row.success),
                     "bold green" if (row.success or 0) >= 0.99 else "bold red"),
                    ("p50 ", units.format_latency_ms(row.p50_ms), "bold"),
                    ("p95 ", units.format_latency_ms(row.p95_ms), "bold"),
                    ("p99 ", units.format_latency_ms(row.p99_ms), "bold")):
                t.append(label, style="dim")
                t.append(value + "  ", style=style)
        if row is not None:
            t.append(f"meshed {row.meshed}/{row.total}", style="dim")
        self.query_one("#chart-now", Static).update(t, layout=False)
        hist = row.latency if row is not None else None
        self.query_one(DistributionChart).show(
            latency_bins(hist), row.p50_ms if row else None, row.p95_ms if row else None,
            row.p99_ms if row else None,
            headline=(f"last {units.format_window(row.window_s)}, {hist.count:,} requests"
                      if row is not None and hist is not None else ""))
        self._update_status()

    def show_history(self, points: list[HistoryPoint]) -> None:
        """The three time charts from the controller's per-step points."""
        self.history = points
        self.history_at = self.target.clock()
        show_history(self, points, self.target.clock())
        self._update_status()

    def _update_status(self) -> None:
        clock = self.target.clock
        age = ("never" if self.updated_at is None
               else f"{clock() - self.updated_at:.1f}s ago")
        parts = [f" {self.source.label}", self.target.label,
                 f"history {chart_range(self).describe()} in "
                 f"{chart_range(self).step_s}s steps: {len(self.history)} points",
                 f"updated {age}", self.state]
        style = "" if self.state == "connected" else "bold yellow"
        self.query_one("#status", Static).update(Text("  │  ".join(parts), style=style),
                                                 layout=False)


class DashTapScreen(_ViewNav, TapScreen):
    """``meshtui tap`` on the selected resource, as one of the dashboard's tabs."""

    view = "tap"
    BINDINGS = [*VIEW_BINDINGS,
                Binding("escape", "clear_filter", "Clear filter / back")]

    def __init__(self, source: Source, target: Target) -> None:
        super().__init__(source, target.tap_query(), title=f"tap {target.label}")
        self.target = target

    def on_mount(self) -> None:
        super().on_mount()
        self.show_crumbs()

    def action_clear_filter(self) -> None:
        # Escape closes the filter box, then clears the filter, then goes back.
        if self.query_one("#filter", Input).display or self.filter_text:
            super().action_clear_filter()
        else:
            self.action_back()


class DashTopScreen(_ViewNav, TopScreen):
    """``meshtui top`` on the selected resource, as one of the dashboard's tabs.

    ``c`` is charts here, as on every dashboard screen: clearing the routes is ``x``.
    """

    view = "top"
    BINDINGS = [*VIEW_BINDINGS, Binding("x", "clear", "Clear"),
                Binding("escape", "back", "Back")]

    def __init__(self, source: Source, target: Target) -> None:
        super().__init__(source, target.tap_query(), title=f"top {target.label}",
                         interval=target.interval)
        self.target = target

    def on_mount(self) -> None:
        super().on_mount()
        self.show_crumbs()
