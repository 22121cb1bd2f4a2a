"""Pilot tests of the real screens against the real demo, through the real gRPC source."""

from __future__ import annotations

import asyncio

import pytest

from meshtui.client.controller_source import ControllerSource
from meshtui.client.queries import StatQuery, TapQuery
from meshtui.tui.app import MeshApp
from meshtui.tui.feed import FeedView
from meshtui.tui.stat_table import StatTable
from meshtui.tui.table import VirtualTable

pytestmark = pytest.mark.slow


async def _until(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.2)


async def test_stat_drills_from_namespaces_to_voting_pods(demo) -> None:
    server, *_ = demo
    app = MeshApp(ControllerSource(server), StatQuery("namespace"), interval=0.5)
    async with app.run_test(size=(140, 35)) as pilot:
        table = app.screen.query_one(StatTable)
        await _until(lambda: "emojivoto" in table.row_names())
        table.select_index(table.row_names().index("emojivoto"))
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen.query_one(StatTable), StatTable)
                     and "voting" in app.screen.query_one(StatTable).row_names())
        deploys = app.screen.query_one(StatTable)
        await _until(lambda: any(r.name == "voting" and r.rps for r in deploys.rows))
        deploys.select_index(deploys.row_names().index("voting"))
        await pilot.press("enter")
        pods = app.screen.query_one(StatTable)
        await _until(lambda: bool(pods.rows))
        assert all(r.owner == "voting" and r.kind == "pod" for r in pods.rows)


# The feed keeps the controller's events as they came: a filter, the colours and a
# request's detail must still see every step of each request.
@pytest.mark.parametrize(("deploy", "typed", "shown"), [
    ("web", "", "destination"),
    # web answers a doughnut vote with 500 (voting's gRPC failure is web's 5xx).
    ("web", "status=5xx", "/api/vote?choice=:doughnut:"),
])
async def test_tap_feed_fills_from_the_mesh_filters_and_opens_a_request(
        demo, deploy: str, typed: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    server, *_ = demo
    app = MeshApp(ControllerSource(server), TapQuery("deployment", "emojivoto", deploy))
    async with app.run_test(size=(140, 35)) as pilot:
        feed = app.screen.query_one(FeedView)
        await _until(lambda: feed.shown >= 30)
        if typed:
            await pilot.press("slash", *typed, "enter")
            await _until(lambda: feed.shown >= 3)
            statuses = {feed.ring.get(s).status for s in feed._view}  # type: ignore[union-attr]
            assert statuses and all(s is not None and s >= 500 for s in statuses)
        await pilot.press("up", "enter")
        await pilot.pause(0.3)
        assert shown in str(app.screen.query_one("#detail").render())


async def test_top_counts_routes_from_the_mesh(demo) -> None:
    server, *_ = demo
    app = MeshApp(ControllerSource(server), TapQuery("deployment", "emojivoto", "web"), top=True)
    async with app.run_test(size=(140, 35)):
        table = app.screen.query_one(VirtualTable)
        await _until(lambda: "/api/list" in table.column_values("PATH"))
        assert "deploy/vote-bot" in table.column_values("SOURCE")

