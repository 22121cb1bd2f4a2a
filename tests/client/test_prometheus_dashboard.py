"""The dashboard reading a real Prometheus: the same views, its figures, its name."""

from __future__ import annotations

import pytest
from promkit import Prometheus, needs_prometheus
from textual.widgets import Static

from meshtui.client.prometheus_source import PrometheusSource
from meshtui.client.queries import StatQuery
from meshtui.tui.app import MeshApp
from meshtui.tui.chart_data import ChartRange
from meshtui.tui.dashboard import NamespaceTable, OverviewScreen
from meshtui.tui.resource_views import ChartsScreen
from meshtui.tui.stat_table import StatTable

pytestmark = [needs_prometheus, pytest.mark.slow]


async def until(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def text(app: MeshApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_overview_and_charts_over_prometheus(prom: Prometheus) -> None:
    app = MeshApp(PrometheusSource(prom.url), StatQuery("namespace"), dashboard=True,
                  interval=0.5)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(lambda: isinstance(app.screen, OverviewScreen)
                    and app.screen.query_one(NamespaceTable).row_names() == ["emojivoto"])
        table = app.screen.query_one(NamespaceTable)
        # One of voting's two proxies is not answering its scrapes.
        assert table.column_values("MESHED") == ["3/4"]
        assert table.column_values("STATE") == ["◐ partly meshed"]
        assert "MESHED: proxies Prometheus scrapes" in text(app, "#status")
        health = text(app, "#health")
        assert f"prometheus {prom.url} up" in health and "proxies 3/4 reachable" in health
        await pilot.press("enter")
        await until(lambda: not isinstance(app.screen, OverviewScreen)
                    and app.screen.query_one(StatTable).row_names() == ["voting", "web"])
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, ChartsScreen) and app.screen.history)
        assert "history last 15m in 10s steps" in text(app, "#status")
        await pilot.press("z")
        assert app.chart_range == ChartRange(3600)
        await until(lambda: "history last 1h in 40s steps" in text(app, "#status"))
        await pilot.press("z", "z")  # 6h, then back to 15 minutes
        assert app.chart_range == ChartRange(900)
