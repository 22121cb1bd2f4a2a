"""The screens' look, pinned: deterministic fake mesh, fixed clock, fixed size.

Regenerate after an intended change with `pytest tests/tui/test_snapshots.py
--snapshot-update` and look at the report before committing.
"""

from __future__ import annotations

from tuikit import until

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import StatQuery, TapQuery
from meshtui.tui.app import MeshApp

NOW = 1_764_000_000.0
SIZE = (130, 32)


def stat_app(query: StatQuery) -> MeshApp:
    # One refresh only (a long interval), so what is drawn does not depend on timing.
    return MeshApp(FakeSource(clock=lambda: NOW), query, interval=3600, clock=lambda: NOW)


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.6)


def test_namespaces(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(stat_app(StatQuery("namespace")), terminal_size=SIZE,
                        run_before=_settle)


def test_deployments_sorted_by_rps(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(stat_app(StatQuery("deployment", namespace="emojivoto")),
                        press=["s", "s", "s"], terminal_size=SIZE, run_before=_settle)


def test_top_routes(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = MeshApp(FakeSource(clock=lambda: NOW, tap_rps=2000, tap_requests=400),
                  TapQuery("deployment", "emojivoto", "web"), top=True,
                  title="top deploy/web -n emojivoto")

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = pilot.app.screen
        await until(lambda: screen.state == "stream ended")
        await pilot.pause(1.5)  # one redraw a second shows all of it

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_tap_feed_and_request_detail(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = MeshApp(FakeSource(clock=lambda: NOW, tap_rps=2000, tap_requests=100),
                  TapQuery("deployment", "emojivoto", "web"), title="tap deploy/web -n emojivoto")

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = pilot.app.screen
        await until(lambda: screen.state == "stream ended")
        feed = screen.feed
        # The feed follows to its end (scrolled once laid out).
        await until(lambda: feed.max_scroll_y > 0 and feed.scroll_y == feed.max_scroll_y)
        await pilot.pause(0.3)
        await pilot.press("up", "up", "up", "enter")
        await until(lambda: pilot.app.screen is not screen)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
