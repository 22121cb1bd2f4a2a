"""Pilot tests of the dashboard against the deterministic fake mesh."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Input, Static

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import StatQuery, StatSnapshot, TapQuery
from meshtui.errors import RuntimeFailure
from meshtui.tui.app import MeshApp
from meshtui.tui.charts import DistributionChart, TimeChart
from meshtui.tui.dashboard import DashStatScreen, NamespaceTable, OverviewScreen
from meshtui.tui.resource_views import ChartsScreen, DashTapScreen, DashTopScreen
from meshtui.tui.stat_table import StatTable

NOW = 1_764_000_000.0
SIZE = (140, 40)


def dashboard(source: FakeSource | None = None) -> MeshApp:
    return MeshApp(source or FakeSource(clock=lambda: NOW), StatQuery("namespace"),
                   dashboard=True, interval=0.25, clock=lambda: NOW)


def text_of(app: MeshApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def select(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    table = pilot.app.screen.query_one(StatTable)
    table.select_index(table.row_names().index(name))
    await pilot.pause(0.05)


async def to_voting(pilot) -> None:  # type: ignore[no-untyped-def]
    """From the overview to emojivoto's deployments, voting selected."""
    await pilot.pause(0.3)
    await select(pilot, "emojivoto")
    await pilot.press("enter")
    await pilot.pause(0.3)
    await select(pilot, "voting")


async def test_overview_lists_namespaces_with_meshed_state_and_health() -> None:
    app = dashboard()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.4)
        assert isinstance(app.screen, OverviewScreen)
        table = app.screen.query_one(NamespaceTable)
        assert set(table.row_names()) == {"default", "emojivoto", "kube-system", "meshtui"}
        states = dict(zip(table.row_names(), table.column_values("STATE"), strict=True))
        assert states["default"] == "○ not meshed"
        assert states["emojivoto"] == "● fully meshed"
        health = text_of(app, "#health")
        assert "controller fake up" in health
        assert "proxies 9/9 reachable" in health
        assert "last scrape 0.4s ago" in health
        assert "3 fully · 0 partly · 1 not meshed" in health
        assert "pods 9/10 meshed" in health
        # it starts on the busiest namespace, whose charts show 15 minutes of history
        assert table.selected_row.name == "emojivoto"
        rps = app.screen.query_one("#chart-rps", TimeChart)
        xs = [x for x, _ in rps.series[0].points]
        assert len(xs) == 90 and min(xs) <= -880
        assert "emojivoto" in rps.headline


async def test_overview_shows_partly_meshed_and_proxies_down() -> None:
    class Degraded(FakeSource):
        async def stats(self, query: StatQuery) -> StatSnapshot:
            snap = await super().stats(query)
            rows = tuple(replace(r, meshed=r.meshed - 1) if r.name == "emojivoto" else r
                         for r in snap.rows)
            return replace(snap, rows=rows, proxies_reachable=snap.proxies_total - 1,
                           last_scrape=NOW - 30)

    app = dashboard(Degraded(clock=lambda: NOW))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.4)
        table = app.screen.query_one(NamespaceTable)
        states = dict(zip(table.row_names(), table.column_values("STATE"), strict=True))
        assert states["emojivoto"] == "◐ partly meshed"
        health = text_of(app, "#health")
        assert "8/9 reachable (1 down)" in health
        assert "last scrape 30.0s ago" in health
        assert "2 fully · 1 partly · 1 not meshed" in health


async def test_overview_says_when_the_controller_is_gone() -> None:
    class Gone(FakeSource):
        async def stats(self, query: StatQuery) -> StatSnapshot:
            raise RuntimeFailure("cannot reach the controller at 127.0.0.1:1")

    app = dashboard(Gone(clock=lambda: NOW))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        assert "reconnecting: cannot reach the controller" in text_of(app, "#health")


async def test_drill_down_with_breadcrumbs_and_back() -> None:
    app = dashboard()
    async with app.run_test(size=SIZE) as pilot:
        await to_voting(pilot)
        screen = app.screen
        assert isinstance(screen, DashStatScreen) and screen.stat_query.kind == "deployment"
        assert text_of(app, "#crumbs").strip() == "overview › emojivoto › deployments"
        await pilot.press("enter")
        await pilot.pause(0.3)
        pods = app.screen.query_one(StatTable)
        assert pods.row_names() and all(n.startswith("voting-") for n in pods.row_names())
        assert text_of(app, "#crumbs").strip() == (
            "overview › emojivoto › deployments › voting › pods")
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("escape")  # nothing above the overview: it stays
        assert isinstance(app.screen, OverviewScreen)


async def test_charts_fill_from_history_and_show_the_window_distribution() -> None:
    app = dashboard()
    async with app.run_test(size=SIZE) as pilot:
        await to_voting(pilot)
        await pilot.press("c")
        await pilot.pause(0.4)
        screen = app.screen
        assert isinstance(screen, ChartsScreen)
        assert screen.target.name == "voting" and screen.target.namespace == "emojivoto"
        assert len(screen.history) == 90  # 15 minutes in 10 s steps, at once
        latency = screen.query_one("#chart-latency", TimeChart)
        assert [s.label for s in latency.series] == ["p50", "p95", "p99"]
        for s in latency.series:
            assert len(s.points) == 90
        success = screen.query_one("#chart-success", TimeChart)
        assert all(v < 100 for _, v in success.series[0].points)  # voting fails
        dist = screen.query_one(DistributionChart)
        row = screen.row
        assert row is not None and row.latency is not None
        assert sum(b.count for b in dist.bins) == row.latency.count > 0
        assert dist.bands()[0] == 0 and dist.bands()[-1] >= 2
        now = text_of(app, "#chart-now")
        assert "success 8" in now and "p99" in now
        assert "c charts" in text_of(app, "#crumbs")
        status = text_of(app, "#status")
        assert "history last 15m in 10s steps: 90 points" in status
        # the drawing is kept while nothing changes
        builds = latency.builds
        await pilot.pause(0.3)
        assert latency.builds == builds


async def test_tap_and_top_are_scoped_and_switch_in_place() -> None:
    app = dashboard()
    async with app.run_test(size=SIZE) as pilot:
        await to_voting(pilot)
        depth = len(app.screen_stack)
        await pilot.press("t")
        await pilot.pause(0.3)
        tap = app.screen
        assert isinstance(tap, DashTapScreen)
        assert tap.tap_query == TapQuery("deployment", "emojivoto", "voting")
        assert tap.received > 0
        await pilot.press("o")
        await pilot.pause(1.2)
        top = app.screen
        assert isinstance(top, DashTopScreen)
        assert top.tap_query == TapQuery("deployment", "emojivoto", "voting")
        assert len(app.screen_stack) == depth + 1  # switched, not stacked
        assert top.table.row_count > 0
        await pilot.press("c")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ChartsScreen) and len(app.screen_stack) == depth + 1
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DashStatScreen) and len(app.screen_stack) == depth


async def test_tap_escape_closes_filter_then_clears_it_then_goes_back() -> None:
    app = dashboard(FakeSource(clock=lambda: NOW, tap_requests=100))  # a stream that ends
    async with app.run_test(size=SIZE) as pilot:
        await to_voting(pilot)
        await pilot.press("t")
        await pilot.pause(0.2)
        tap = app.screen
        await pilot.press("slash")
        box = tap.query_one("#filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"status=500", "enter")
        await pilot.pause(0.1)
        assert tap.filter_text == "status=500"  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert tap.filter_text == "" and app.screen is tap  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DashStatScreen)


async def test_command_palette_opens_a_resource_view() -> None:
    app = dashboard()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"charts deploy/voting")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.4)
        screen = app.screen
        assert isinstance(screen, ChartsScreen)
        assert (screen.target.kind, screen.target.name) == ("deployment", "voting")
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, OverviewScreen)


class PartialStepSource(FakeSource):
    """The controller's history ends with the step still in progress: a few
    seconds of requests, here a wild 999 rps."""

    async def history(self, query, span_s, step_s):  # type: ignore[no-untyped-def]
        from meshtui.client.queries import HistoryPoint

        out = await super().history(query, span_s, step_s)
        for points in out.values():
            points.append(HistoryPoint(NOW + 6, 999.0, 0.5, 1.0, 2.0, 3.0))
        return out


async def test_charts_end_at_the_last_whole_step() -> None:
    app = dashboard(PartialStepSource(clock=lambda: NOW))
    async with app.run_test(size=SIZE) as pilot:
        await to_voting(pilot)
        await pilot.press("c")
        await pilot.pause(0.4)
        rps = app.screen.query_one("#chart-rps", TimeChart)
        values = [v for _, v in rps.series[0].points]
        assert len(values) == 90 and 999.0 not in values
        assert "999" not in rps.headline and "now " in rps.headline
        assert rps.series[0].points[-1][0] == -10.0  # the last whole step, 10 s ago
