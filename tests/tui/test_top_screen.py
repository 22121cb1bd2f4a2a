"""Pilot tests of the top table against the deterministic fake source."""

from __future__ import annotations

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import TapQuery
from meshtui.tui.app import MeshApp
from meshtui.tui.table import VirtualTable
from meshtui.tui.top_screen import TopScreen


async def test_routes_sorted_by_count_then_by_any_column() -> None:
    app = MeshApp(FakeSource(tap_rps=400), TapQuery("deployment", "emojivoto", "web"),
                  top=True, title="top deploy/web -n emojivoto")
    async with app.run_test(size=(150, 30)) as pilot:
        await pilot.pause(1.6)
        screen = app.screen
        assert isinstance(screen, TopScreen)
        table = screen.query_one(VirtualTable)
        counts = [int(c) for c in table.column_values("COUNT")]
        assert len(counts) >= 4 and counts == sorted(counts, reverse=True)
        paths = table.column_values("PATH")
        assert "/api/vote" in paths and all("?" not in p for p in paths)  # query dropped
        vote = paths.index("/api/vote")
        assert table.column_values("SUCCESS")[vote] != "100.00%"  # the doughnut fails
        table.set_sort("WORST")
        worst = [r.worst_us for r in table.rows]
        assert worst == sorted(worst, reverse=True)
        await pilot.press("c")
        await pilot.pause(0.1)
        assert screen.routes.snapshot() == () or len(table.rows) <= 5


async def test_b_groups_the_same_counts_otherwise() -> None:
    app = MeshApp(FakeSource(tap_rps=400), TapQuery("deployment", "emojivoto", "web"),
                  top=True, title="top", by=("dst", "status"))
    async with app.run_test(size=(150, 30)) as pilot:
        await pilot.pause(1.6)
        screen = app.screen
        assert isinstance(screen, TopScreen)
        table = screen.query_one(VirtualTable)
        assert table.column_names[:2] == ["DESTINATION", "STATUS"]
        assert "PATH" not in table.column_names
        statuses = set(table.column_values("STATUS"))
        assert "200" in statuses and len(statuses) >= 2
        await pilot.press("b")  # the default grouping comes next
        await pilot.pause(0.1)
        assert table.column_names[:4] == ["SOURCE", "DESTINATION", "METHOD", "PATH"]
        assert "rows by src,dst,method,path" in str(
            screen.query_one("#status").render())
        by_path = sum(int(c) for c in table.column_values("COUNT"))
        await pilot.press("b")
        await pilot.pause(0.1)
        assert table.column_names[:2] == ["DESTINATION", "PATH"]
        # Fewer or as many rows, and (the intake running on) at least as many counted.
        assert sum(int(c) for c in table.column_values("COUNT")) >= by_path
