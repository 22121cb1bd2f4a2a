"""The Textual application: screens fed by a source object."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from meshtui.tui.source import Source, StatQuery
from meshtui.tui.stat_screen import StatScreen


class MeshApp(App[int]):
    """meshtui's terminal UI. ``source`` supplies every figure it shows."""

    CSS_PATH = Path(__file__).with_name("meshtui.tcss")
    TITLE = "meshtui"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "toggle_help", "Keys", key_display="?"),
    ]

    def __init__(self, source: Source, query: StatQuery, *, interval: float = 1.0,
                 wide: bool = False, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.source = source
        self.start_query = query
        self.interval = interval
        self.wide = wide
        self.clock = clock

    def on_mount(self) -> None:
        self.push_screen(StatScreen(self.source, self.start_query, interval=self.interval,
                                    wide=self.wide, clock=self.clock))

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    async def on_unmount(self) -> None:
        await self.source.close()
