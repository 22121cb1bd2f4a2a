"""The dashboard over a real controller whose inventory names a namespace with
control characters: shown as escapes, and still drilled into, charted and tapped
by the name the controller knows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Static
from tuikit import until

from meshtui.client.controller_source import ControllerSource
from meshtui.client.queries import StatQuery
from meshtui.controller.server import Controller
from meshtui.tui.app import MeshApp
from meshtui.tui.dashboard import DashStatScreen
from meshtui.tui.resource_views import ChartsScreen
from meshtui.tui.stat_table import StatTable

NAMESPACE = "evil\u202e\x1b[2J"  # a bidi override, then "clear the screen"
SHOWN = "evil\\u202e\\x1b[2J"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"pods": [
        {"name": f"{dep}-0", "namespace": NAMESPACE, "deployment": dep,
         "address": f"127.0.0.1:{port}"} for dep, port in (("web", 1), ("api", 2))]}))
    ctl = Controller(inventory, "127.0.0.1:0", scrape_interval_s=0.25, scrape_timeout_s=0.2)
    port = await ctl.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await ctl.stop(None)


def names(app: MeshApp) -> list[str]:
    return app.screen.query_one(StatTable).row_names()


def shown(app: MeshApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_a_namespace_named_with_control_characters_drills_down(server: str) -> None:
    app = MeshApp(ControllerSource(server), StatQuery("namespace"), dashboard=True,
                  interval=0.25)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(lambda: names(app) == [SHOWN])
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, DashStatScreen)
                    and app.screen.stat_query.kind == "deployment")
        assert SHOWN in shown(app, "#crumbs")
        await until(lambda: sorted(names(app)) == ["api", "web"])
        table = app.screen.query_one(StatTable)
        table.select_index(names(app).index("web"))
        await pilot.press("enter")
        await until(lambda: names(app) == ["web-0"])
        await pilot.press("c")  # the pod's charts: its figures are found by its name
        await until(lambda: isinstance(app.screen, ChartsScreen)
                    and "meshed 0/1" in shown(app, "#chart-now"))
        assert f"po/web-0 -n {SHOWN}" in shown(app, "#status")


async def palette(pilot, command: str) -> None:  # type: ignore[no-untyped-def]
    """Runs ``command`` from the command palette (Ctrl+P)."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    await pilot.press(*command)
    await pilot.pause(0.5)
    await pilot.press("enter")


async def test_the_command_palette_opens_such_a_namespace_and_its_pods_views(
        server: str) -> None:
    app = MeshApp(ControllerSource(server), StatQuery("namespace"), dashboard=True,
                  interval=0.25)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(lambda: names(app) == [SHOWN])
        await palette(pilot, "open namespace evil")
        await until(lambda: isinstance(app.screen, DashStatScreen)
                    and sorted(names(app)) == ["api", "web"])
        await palette(pilot, "charts po/api-0")
        await until(lambda: isinstance(app.screen, ChartsScreen)
                    and "meshed 0/1" in shown(app, "#chart-now"))
