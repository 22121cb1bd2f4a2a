"""The Textual application: screens fed by a source object."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from meshtui.client.queries import StatQuery, TapQuery
from meshtui.client.source import Source
from meshtui.tui.chart_data import ChartRange
from meshtui.tui.stat_screen import StatScreen


class MeshApp(App[int]):
    """meshtui's terminal UI. ``source`` supplies every figure it shows."""

    CSS_PATH = Path(__file__).with_name("meshtui.tcss")
    TITLE = "meshtui"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "toggle_help", "Keys", key_display="?"),
    ]

    def __init__(self, source: Source, query: StatQuery | TapQuery, *, interval: float = 1.0,
                 wide: bool = False, clock: Callable[[], float] = time.time,
                 buffer: int = 100_000, title: str = "", top: bool = False,
                 dashboard: bool = False, limit: int | None = None,
                 chart_range: ChartRange | None = None, filter_text: str = "",
                 by: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.source = source
        self.start_query = query
        self.interval = interval
        self.wide = wide
        self.clock = clock
        self.buffer = buffer
        self.title_text = title
        self.top = top
        self.dashboard = dashboard  # open the dashboard's overview, not the query's view
        self.limit = limit  # tap's --limit
        self.filter_text = filter_text  # tap's and top's --filter, checked already
        self.by = by  # top's --by
        self.chart_range = chart_range or ChartRange()

    def on_mount(self) -> None:
        q = self.start_query
        if self.dashboard:
            from meshtui.tui.dashboard import OverviewScreen

            self.push_screen(OverviewScreen(self.source, interval=self.interval,
                                            clock=self.clock))
        elif isinstance(q, TapQuery) and self.top:
            from meshtui.tui.top_screen import TopScreen

            self.push_screen(TopScreen(self.source, q, title=self.title_text,
                                       filter_text=self.filter_text, by=self.by))
        elif isinstance(q, TapQuery):
            from meshtui.tui.tap_screen import TapScreen

            self.push_screen(TapScreen(self.source, q, buffer=self.buffer,
                                       title=self.title_text, limit=self.limit,
                                       filter_text=self.filter_text))
        else:
            self.push_screen(StatScreen(self.source, q, interval=self.interval,
                                        wide=self.wide, clock=self.clock))

    def action_zoom(self) -> None:
        """The time charts over the next longer span the source holds (15m, 1h, 6h)."""
        self.chart_range = self.chart_range.zoomed(self.source.history_s)
        refresh = getattr(self.screen, "refresh_history", None)
        if refresh is not None:
            refresh()
        self.notify(f"charts: {self.chart_range.describe()}", timeout=2)

    def action_toggle_help(self) -> None:
        from meshtui.tui.keys_panel import KeysPanel

        panels = self.screen.query(KeysPanel)
        if not panels:
            self.screen.mount(KeysPanel())
            return
        panel = panels.first()
        panel.display = not panel.display
        if panel.display:
            panel.show_keys()  # the focused widget may have changed since

    async def on_unmount(self) -> None:
        await self.source.close()


def run_app(app: MeshApp) -> int:
    """Runs the app in this process, its garbage collector tuned (see tune_gc_for_ui)."""
    from meshtui.runtime import tune_gc_for_ui

    tune_gc_for_ui()
    app.run()
    return app.return_code or 0
