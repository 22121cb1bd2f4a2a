"""Every key the help panel (`?`) lists on a dashboard screen, pressed and checked.

The keys are read from the screens themselves (meshtui's own bindings among
the active ones), so a key added without a check here fails the listing test.
"""

from __future__ import annotations

from textual.command import CommandPalette
from textual.screen import ModalScreen
from textual.widgets import Input, Static
from tuikit import until

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import StatQuery
from meshtui.tui.app import MeshApp
from meshtui.tui.dashboard import DashStatScreen, OverviewScreen
from meshtui.tui.feed import FeedView
from meshtui.tui.graph_view import GraphScreen, GraphView
from meshtui.tui.resource_views import ChartsScreen, DashTapScreen, DashTopScreen
from meshtui.tui.table import VirtualTable

NOW = 1_764_000_000.0
SIZE = (140, 30)
APP_KEYS = {"q", "question_mark", "ctrl+p"}
TABLE_KEYS = {"up", "down", "pageup", "pagedown", "home", "end", "enter"}
VIEW_KEYS = {"c", "t", "o", "escape"}
EXPECTED = {
    "overview": APP_KEYS | TABLE_KEYS | VIEW_KEYS | {"s", "r", "z", "g", "ctrl+s"},
    "deployments": APP_KEYS | TABLE_KEYS | VIEW_KEYS | {"s", "r", "ctrl+s"},
    "charts": APP_KEYS | VIEW_KEYS | {"z"},
    "tap": APP_KEYS | VIEW_KEYS | {"space", "slash", "end", "home", "up", "down", "pageup",
                                   "pagedown", "enter", "w", "e"},
    "top": APP_KEYS | TABLE_KEYS | VIEW_KEYS | {"s", "r", "x", "b", "ctrl+s"},
}


def make_app(**fake: object) -> MeshApp:
    return MeshApp(FakeSource(clock=lambda: NOW, **fake), StatQuery("namespace"),  # type: ignore[arg-type]
                   dashboard=True, interval=0.25, clock=lambda: NOW)


def listed_keys(app: MeshApp) -> set[str]:
    """The keys the help panel lists that meshtui itself binds (not Textual's own)."""
    out = set()
    for key, active in app.screen.active_bindings.items():
        if active.binding.system:
            continue
        owners = [c for c in type(active.node).__mro__
                  if any(b == active.binding for b in _bindings(c))]
        # Textual's own keys count only where meshtui relies on them (the palette).
        if (any(c.__module__.startswith("meshtui") for c in owners)
                or active.binding.action == "command_palette"):
            out.add(key)
    return out


def _bindings(cls: type) -> list[object]:
    from textual.binding import Binding

    out = []
    for b in cls.__dict__.get("BINDINGS", []):
        if isinstance(b, Binding):
            out.extend(Binding(k.strip(), b.action, b.description, b.show, b.key_display,
                               b.priority) for k in b.key.split(","))
    return out


def same(a: object, b: object) -> bool:
    return (a.key, a.action) == (b.key, b.action)  # type: ignore[attr-defined]


async def press_help(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    for _ in range(2):  # the second time it is shown again, not built again
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert shown_keys(app), "? shows the keys"
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert not shown_keys(app), "? again hides them"


def shown_keys(app) -> bool:  # type: ignore[no-untyped-def]
    """Whether the key list is on the screen and names what the screen's own keys do."""
    from meshtui.tui.keys_panel import KeysPanel

    panels = [p for p in app.screen.query(KeysPanel) if p.display]
    if not panels:
        return False
    text = str(panels[0].render())
    return "Quit" in text and "Keys" in text and all(
        a.binding.description in text for a in app.screen.active_bindings.values()
        if a.node is app.screen and a.binding.description)


async def press_palette(pilot) -> None:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    assert isinstance(pilot.app.screen, CommandPalette)
    await pilot.press("escape")
    await pilot.pause(0.1)
    assert pilot.app.screen is screen


async def table_keys(pilot, table: VirtualTable) -> None:  # type: ignore[no-untyped-def]
    """up, down, pageup, pagedown, home, end move the cursor; s and r sort; ctrl+s asks
    where to save the table."""
    await pilot.press("ctrl+s")
    await pilot.pause(0.1)
    assert pilot.app.screen.query("#save-path")
    await pilot.press("escape")
    await pilot.pause(0.1)
    await pilot.press("home")
    assert table.cursor == 0
    if table.row_count > 1:
        await pilot.press("down")
        assert table.cursor == 1
        await pilot.press("up")
        assert table.cursor == 0
    await pilot.press("end")
    assert table.cursor == table.row_count - 1
    await pilot.press("pageup")
    assert table.cursor == 0 or table.cursor < table.row_count - 1
    await pilot.press("pagedown")
    assert table.cursor == table.row_count - 1
    await pilot.press("home")
    first = table.sort_column
    await pilot.press("s")
    assert table.sort_column != first
    reverse = table.reverse
    await pilot.press("r")
    assert table.reverse != reverse


async def test_every_listed_key_is_checked_on_every_screen() -> None:
    app = make_app(tap_requests=60)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        seen = {"overview": listed_keys(app)}
        await pilot.press("enter")
        await pilot.pause(0.2)
        seen["deployments"] = listed_keys(app)
        await pilot.press("c")
        await pilot.pause(0.2)
        seen["charts"] = listed_keys(app)
        await pilot.press("t")
        await pilot.pause(0.2)
        seen["tap"] = listed_keys(app)
        await pilot.press("o")
        await pilot.pause(0.2)
        seen["top"] = listed_keys(app)
    assert seen == EXPECTED


async def test_overview_and_deployments_keys() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        overview = app.screen
        assert isinstance(overview, OverviewScreen)
        await table_keys(pilot, overview.table)
        await pilot.press("z")  # the controller keeps 15 minutes: nothing longer to show
        assert app.chart_range.span_s == 900
        await press_help(pilot)
        await press_palette(pilot)
        overview.table.set_sort("NAME")
        overview.table.select_index(overview.table.row_names().index("emojivoto"))
        for key, kind in (("c", ChartsScreen), ("t", DashTapScreen), ("o", DashTopScreen)):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert isinstance(app.screen, kind)
            assert app.screen.target.kind == "namespace"  # type: ignore[attr-defined]
            assert app.screen.target.name == "emojivoto"  # type: ignore[attr-defined]
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert app.screen is overview
        await pilot.press("enter")
        await pilot.pause(0.2)
        deployments = app.screen
        assert isinstance(deployments, DashStatScreen) and deployments is not overview
        await table_keys(pilot, deployments.table)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is overview
        await pilot.press("q")
        await pilot.pause(0.1)
    assert app.return_code in (0, None)
    assert not app.is_running


async def test_g_draws_the_namespace_graph_and_enter_drills_into_a_box() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        overview = app.screen
        overview.table.set_sort("NAME")  # type: ignore[attr-defined]
        overview.table.select_index(  # type: ignore[attr-defined]
            overview.table.row_names().index("emojivoto"))  # type: ignore[attr-defined]
        await pilot.press("g")
        graph = app.screen
        assert isinstance(graph, GraphScreen)
        view = graph.query_one(GraphView)
        await until(lambda: bool(view.graph.boxes))
        labels = [b.label for b in view.graph.boxes]
        assert {"web", "emoji", "voting", "vote-bot", "kube-system/kube-dns"} <= set(labels)
        # Callers left of callees, and web's failing calls to voting drawn red.
        box = {b.label: b for b in view.graph.boxes}
        assert box["vote-bot"].x < box["web"].x < box["voting"].x
        text = view.render()
        styles = {text.plain[s.start:s.end] for s in text.spans if "red" in str(s.style)}
        assert "▶" in "".join(styles)
        # Arrows move the selection; Enter opens the selected deployment's pods.
        while view.selected_key != ("emojivoto", "voting"):
            await pilot.press("right")
        await pilot.press("enter")
        await pilot.pause(0.2)
        pods = app.screen
        assert isinstance(pods, DashStatScreen)
        assert (pods.stat_query.kind, pods.stat_query.owner) == ("pod", "voting")
        await until(lambda: bool(pods.table.rows))
        assert all(r.name.startswith("voting-") for r in pods.table.rows)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is graph
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is overview


async def test_charts_keys() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("c")
        await pilot.pause(0.2)
        charts = app.screen
        assert isinstance(charts, ChartsScreen)
        await pilot.press("c")  # already there: nothing changes
        assert app.screen is charts
        app.source.history_s = 6 * 3600  # type: ignore[misc] # a source holding 6 hours
        await pilot.press("z")
        await until(lambda: len(charts.history) == 90
                    and "history last 1h in 40s steps: 90 points"
                    in str(charts.query_one("#status", Static).render()))
        await press_help(pilot)
        await press_palette(pilot)
        await pilot.press("t")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DashTapScreen)
        await pilot.press("c")
        await pilot.pause(0.1)
        await pilot.press("o")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DashTopScreen)
        await pilot.press("c")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ChartsScreen)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, OverviewScreen)


async def test_tap_keys() -> None:
    app = make_app(tap_requests=200)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("t")
        await pilot.pause(0.6)
        tap = app.screen
        assert isinstance(tap, DashTapScreen)
        feed = tap.query_one(FeedView)
        await pilot.press("space")
        assert feed.paused
        await pilot.press("space")
        assert not feed.paused
        await pilot.press("up")
        assert not feed.following and feed.cursor is not None
        cursor = feed.cursor
        await pilot.press("up")
        assert feed.cursor == cursor - 1
        await pilot.press("down")
        assert feed.cursor == cursor
        before = (feed.cursor, feed.scroll_offset.y)
        await pilot.press("pageup")
        assert (feed.cursor, feed.scroll_offset.y) != before
        await pilot.press("pagedown")
        assert (feed.cursor, feed.scroll_offset.y) == before
        await pilot.press("home")
        assert not feed.following
        await pilot.press("end")
        assert feed.following
        await pilot.press("up", "enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ModalScreen)  # the request's detail
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is tap
        await pilot.press("slash")
        assert tap.query_one("#filter", Input).has_focus
        await pilot.press("escape")
        assert not tap.query_one("#filter", Input).display
        await press_help(pilot)
        await press_palette(pilot)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, OverviewScreen)


async def test_top_keys() -> None:
    app = make_app(tap_requests=300, tap_rps=2000)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("o")
        await pilot.pause(1.3)
        top = app.screen
        assert isinstance(top, DashTopScreen)
        assert top.table.row_count > 1
        await table_keys(pilot, top.table)
        await pilot.press("x")
        assert top.table.row_count == 0  # routes cleared
        await press_help(pilot)
        await press_palette(pilot)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, OverviewScreen)
