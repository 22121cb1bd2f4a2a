"""One level of the stat view: a live table, the selected row's sparklines, a status line.

Rates in, frames out: a worker asks the source for a snapshot every
``interval`` seconds and the table is updated from that one snapshot; the
status line's age ticks on a timer. Enter drills down (namespace →
deployments → pods), Escape goes back up.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

import meshtui.model.units as units
from meshtui.client.queries import HistoryPoint, StatQuery, StatSnapshot
from meshtui.client.source import Source
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.stats import StatRow
from meshtui.tui.charts import Spark
from meshtui.tui.stat_table import StatTable

SPARK_POINTS = 120  # two minutes at the default refresh
CHILD = {"namespace": "deployment", "deployment": "pod"}
PLURAL = {"namespace": "namespaces", "deployment": "deployments", "pod": "pods"}


def seen(screen: Screen[None]) -> bool:
    """Whether any of the screen shows: it is on top, or only see-through screens
    (a modal, the command palette) are above it. Textual's ``is_current`` also
    counts an opaque screen's direct neighbour below."""
    stack = screen.app.screen_stack
    if screen not in stack:
        return False
    above = stack[stack.index(screen) + 1:]
    return all(s.styles.background.a < 1 for s in above)


class StatScreen(Screen[None]):
    BINDINGS = [
        # Enter reaches the table first (it posts Selected); this shows it in the footer.
        Binding("enter", "drill", "Drill down"),
        Binding("escape", "back", "Back", show=True),
        Binding("s", "sort_next", "Sort"),
        Binding("r", "sort_reverse", "Reverse"),
    ]

    def __init__(self, source: Source, query: StatQuery, *, interval: float = 1.0,
                 wide: bool = False, crumbs: tuple[str, ...] = (), clock=time.time) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.source = source
        self.stat_query = query
        self.interval = interval
        self.wide = wide
        self.crumbs = crumbs or (PLURAL[query.kind] if not query.namespace
                                 else f"{query.namespace} › {PLURAL[query.kind]}",)
        self.clock = clock
        self.snapshot: StatSnapshot | None = None
        self.updated_at: float | None = None
        self.state = "connecting"
        self.series: dict[tuple[str, str, str], deque[HistoryPoint]] = {}
        self._spark_labels: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._crumb_text(), id="crumbs")
        yield StatTable(self.stat_query.kind, all_namespaces=self.stat_query.namespace is None
                        and self.stat_query.kind != "namespace", wide=self.wide,
                        sort_column="NAME", id="stat-table")
        with Horizontal(id="sparks"):
            for key, title in (("rps", "RPS"), ("success", "SUCCESS"), ("p99", "P99")):
                with Vertical(classes="spark"):
                    yield Label(title, id=f"spark-{key}-label", classes="spark-label")
                    yield Spark(id=f"spark-{key}")
        yield Static("", id="status")
        yield Footer()

    @property
    def table(self) -> StatTable:
        return self.query_one(StatTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.refresh_loop()
        self.set_interval(0.5, self._tick_status)

    def _tick_status(self) -> None:
        # A covered screen changing its widgets still costs the top one a full redraw.
        if seen(self):
            self._update_status()

    def on_screen_resume(self) -> None:
        if self.snapshot is not None:
            self.apply(self.snapshot)

    def _crumb_text(self) -> Text:
        t = Text(" ")
        for i, c in enumerate(self.crumbs):
            if i:
                t.append(" › ", style="dim")
            t.append(c, style="bold" if i == len(self.crumbs) - 1 else "")
        return t

    @work(exclusive=True, group="stat-refresh", exit_on_error=False)
    async def refresh_loop(self) -> None:
        backoff = self.interval
        while True:
            if not seen(self) and self.snapshot is not None:
                # Covered by a deeper level or a view: nobody sees this one refresh.
                await asyncio.sleep(0.1)
                continue
            try:
                snap = await self.source.stats(self.stat_query)
            except (RuntimeFailure, UsageError, OSError) as e:
                self.state = f"reconnecting: {e}"
                self._update_status()
                await asyncio.sleep(min(backoff, 5.0))
                backoff *= 2
                continue
            backoff = self.interval
            self.state = "connected"
            self.apply(snap)
            await asyncio.sleep(self.interval)

    @work(exclusive=True, group="stat-history", exit_on_error=False)
    async def load_history(self, row: StatRow) -> None:
        """Fills the selected row's sparklines from the controller's history.

        Only the selected row keeps a series: ten thousand rows of two minutes
        each would cost a hundred megabytes, and the controller has them anyway.
        """
        await asyncio.sleep(0.15)  # a key held down: fetch for where it stops
        query = replace(self.stat_query, kind=row.kind, namespace=row.query_namespace or None,
                        name=row.query_name, owner=None)
        try:
            hist = await self.source.history(query, span_s=SPARK_POINTS * 5, step_s=5)
        except (RuntimeFailure, UsageError, OSError):
            return
        if self.table.selected_key != row.key:
            return
        points = hist.get(row.key, [])
        series = self.series.get(row.key)
        if series is None:
            return
        newest = series[0].at if series else float("inf")
        for p in reversed(points):
            if p.at < newest - 0.5 and len(series) < SPARK_POINTS:
                series.appendleft(p)
        self._update_sparks()

    def apply(self, snap: StatSnapshot) -> None:
        """Shows one snapshot: the table, the selected row's series, the status."""
        self.snapshot = snap
        self.updated_at = self.clock()
        self.table.show(snap.rows)
        row = self.table.selected_row
        if row is not None:
            series = self.series.get(row.key)
            if series is not None:
                series.append(HistoryPoint(snap.taken_at, row.rps, row.success, row.p50_ms,
                                           row.p95_ms, row.p99_ms))
        self._update_sparks()
        self._update_status()

    def _update_sparks(self) -> None:
        row = self.table.selected_row
        pts = list(self.series.get(row.key, ())) if row else []
        for key, attr, fmt in (("rps", "rps", units.format_rps),
                               ("success", "success", units.format_success),
                               ("p99", "p99_ms", units.format_latency_ms)):
            values = [getattr(p, attr) for p in pts]
            data = [v if v is not None else 0.0 for v in values]
            self.query_one(f"#spark-{key}", Spark).data = data
            last = next((v for v in reversed(values) if v is not None), None)
            label = {"rps": "RPS", "success": "SUCCESS", "p99": "LATENCY P99"}[key]
            text = Text.assemble((label, "bold"), (f" · {row.name} · " if row else " · ", "dim"),
                                 (fmt(last), "cyan"))
            if self._spark_labels.get(key) != text.plain:  # unchanged: no repaint
                self._spark_labels[key] = text.plain
                self.query_one(f"#spark-{key}-label", Label).update(text, layout=False)

    def _update_status(self) -> None:
        age = "never" if self.updated_at is None else f"{self.clock() - self.updated_at:.1f}s ago"
        snap = self.snapshot
        parts = [
            f" {self.source.label}",
            f"window {units.format_window(self.stat_query.window_s)}",
            f"updated {age}",
            self.state,
        ]
        if snap and snap.proxies_total:
            parts.append(f"proxies {snap.proxies_reachable}/{snap.proxies_total}")
        if self.source.meshed_note:
            parts.append(self.source.meshed_note)
        t = self.table
        parts.append(f"sort {t.sort_column} {'▼' if t.reverse else '▲'}")
        missing = snap.missing if snap else ()
        if missing:
            parts.append(f"partial: {len(missing)} not answering ({', '.join(missing[:3])}"
                         f"{', …' if len(missing) > 3 else ''})")
        style = "" if self.state == "connected" and not missing else "bold yellow"
        self.query_one("#status", Static).update(Text("  │  ".join(parts), style=style),
                                                 layout=False)

    def on_virtual_table_highlighted(self, event: StatTable.Highlighted) -> None:
        row = event.row
        if row is not None and row.key not in self.series:
            # A newly selected row: start its series and fetch what came before.
            # The sparklines change once, when that arrives (or at the next
            # refresh), not twice for every step of a held-down key.
            self.series = {row.key: deque(maxlen=SPARK_POINTS)}
            self.load_history(row)
            return
        self._update_sparks()

    def on_virtual_table_selected(self, event: StatTable.Selected) -> None:
        event.stop()
        self.action_drill()

    def action_drill(self) -> None:
        row: StatRow | None = self.table.selected_row
        child = CHILD.get(self.stat_query.kind)
        if row is None or child is None:
            return
        # The query names the row as the source knows it; the crumbs as it is shown.
        if self.stat_query.kind == "namespace":
            query = replace(self.stat_query, kind=child, namespace=row.query_name, name=None,
                            owner=None)
        else:
            query = replace(self.stat_query, kind=child, namespace=row.query_namespace,
                            name=None, owner=row.query_name)
        crumbs = (*self.crumbs, row.name, PLURAL[child])
        self.app.push_screen(self.child_screen(query, crumbs))

    def child_screen(self, query: StatQuery, crumbs: tuple[str, ...]) -> StatScreen:
        """The screen one level down (a subclass drills into its own kind)."""
        return type(self)(self.source, query, interval=self.interval, wide=self.wide,
                          crumbs=crumbs, clock=self.clock)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_sort_next(self) -> None:
        self.table.action_next_sort()
        self._update_status()

    def action_sort_reverse(self) -> None:
        self.table.action_reverse_sort()
        self._update_status()
