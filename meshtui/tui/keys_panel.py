"""The key list that ``?`` shows: every key the current screen answers to.

It reads the screen's active bindings when it is shown (the focused widget's,
the screen's, the app's) and lists each with what it does, the screen's own
keys first. It lies over the right of the screen (meshtui.tcss) and is
shown and hidden rather than rebuilt: Textual's own help panel cost about
100 ms of CPU to mount, this about a millisecond.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static


def key_rows(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """(group, keys, what) for each action the screen answers to, keys of one
    action together, groups in the order: this view, its list, the app."""
    app = screen.app
    rows: dict[tuple[int, str, str], list[str]] = {}
    for active in screen.active_bindings.values():
        binding: Binding = active.binding
        if not binding.description:
            continue
        node = active.node
        group = 2 if node is app else (0 if node is screen else 1)
        key = (group, binding.action, binding.description)
        shown = app.get_key_display(binding)
        if shown not in rows.setdefault(key, []):
            rows[key].append(shown)
    names = ("this view", "in the list", "everywhere")
    return [(names[group], " ".join(keys), what)
            for (group, _, what), keys in sorted(rows.items(), key=lambda kv: kv[0][0])]


def key_text(rows: list[tuple[str, str, str]]) -> Text:
    width = max((len(keys) for _, keys, _ in rows), default=0)
    t = Text(no_wrap=True, overflow="ellipsis")
    group = None
    for g, keys, what in rows:
        if g != group:
            if group is not None:
                t.append("\n")
            t.append(f"{g}\n", style="bold")
            group = g
        t.append(keys.rjust(width + 1) + " ", style="bold yellow")
        t.append(what + "\n")
    return t


class KeysPanel(Static):
    """``?``: the keys of the screen it is shown on."""

    DEFAULT_CSS = """
    KeysPanel {
        dock: right;
        layer: overlay;
        width: 44;
        height: 100%;
        padding: 1 1;
        background: $panel;
        border-left: vkey $foreground 30%;
    }
    """

    def on_mount(self) -> None:
        self.show_keys()

    def show_keys(self) -> None:
        self.update(key_text(key_rows(self.screen)))
