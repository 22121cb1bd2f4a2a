"""Pilot tests of the live stat table against the deterministic fake source."""

from __future__ import annotations

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import StatQuery
from meshtui.tui.app import MeshApp
from meshtui.tui.stat_screen import StatScreen
from meshtui.tui.stat_table import StatTable


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_app(query: StatQuery, clock: Clock | None = None) -> MeshApp:
    clock = clock or Clock()
    return MeshApp(FakeSource(clock=clock), query, interval=0.05, clock=clock)


def names(table: StatTable) -> list[str]:
    return table.row_names()


async def test_namespaces_drill_to_deployments_and_pods_and_back() -> None:
    app = make_app(StatQuery("namespace"))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.2)
        table = app.screen.query_one(StatTable)
        assert set(names(table)) == {"default", "emojivoto", "kube-system", "meshtui"}
        # select emojivoto and drill down
        table.select_index(names(table).index("emojivoto"))
        await pilot.press("enter")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, StatScreen) and screen.stat_query.kind == "deployment"
        deploys = screen.query_one(StatTable)
        assert set(names(deploys)) == {"web", "emoji", "voting", "vote-bot"}
        deploys.select_index(names(deploys).index("voting"))
        await pilot.press("enter")
        await pilot.pause(0.2)
        pods = app.screen.query_one(StatTable)
        assert names(pods) and all(n.startswith("voting-") for n in names(pods))
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen.stat_query.kind == "namespace"  # type: ignore[attr-defined]


async def test_sorting_by_rps_puts_no_traffic_last_both_ways() -> None:
    app = make_app(StatQuery("deployment", namespace="emojivoto"))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.2)
        table = app.screen.query_one(StatTable)
        table.set_sort("RPS")
        await pilot.pause(0.05)
        desc = names(table)
        assert desc[-1] == "vote-bot"  # it only sends: no inbound traffic
        table.set_sort("RPS")  # second press reverses
        await pilot.pause(0.05)
        asc = names(table)
        assert asc[-1] == "vote-bot"
        assert asc[:-1] == list(reversed(desc[:-1]))


async def test_selection_survives_refreshes() -> None:
    clock = Clock()
    app = make_app(StatQuery("deployment", namespace="emojivoto"), clock)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.2)
        table = app.screen.query_one(StatTable)
        table.set_sort("RPS")
        table.select_index(names(table).index("emoji"))
        for _ in range(5):  # figures move, rows may re-order
            clock.t += 37
            await pilot.pause(0.1)
        assert table.selected_row is not None and table.selected_row.name == "emoji"


async def test_status_line_names_server_window_and_state() -> None:
    app = make_app(StatQuery("deployment", namespace="emojivoto"))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.3)
        status = str(app.screen.query_one("#status").render())
        assert "controller fake" in status and "window 1m" in status and "connected" in status


class HalfDeadSource(FakeSource):
    """voting's second pod's proxy is not answering: its row says so."""

    async def stats(self, query: StatQuery):  # type: ignore[no-untyped-def,override]
        from dataclasses import replace

        snap = await super().stats(query)
        rows = tuple(replace(r, missing=("voting-2",)) if r.name == "voting" else r
                     for r in snap.rows)
        return replace(snap, rows=rows)


async def test_status_line_says_which_proxies_the_figures_leave_out() -> None:
    clock = Clock()
    app = MeshApp(HalfDeadSource(clock=clock), StatQuery("deployment", namespace="emojivoto"),
                  interval=0.05, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.3)
        status = str(app.screen.query_one("#status").render())
        assert "partial: 1 not answering (emojivoto/voting-2)" in status
