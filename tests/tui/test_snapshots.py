"""The screens' look, pinned: deterministic fake mesh, fixed clock, fixed size.

Regenerate after an intended change with `pytest tests/tui/test_snapshots.py
--snapshot-update` and look at the report before committing.
"""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("by", [None, ("dst", "status")])
def test_top_routes(snap_compare, by) -> None:  # type: ignore[no-untyped-def]
    app = MeshApp(FakeSource(clock=lambda: NOW, tap_rps=2000, tap_requests=400),
                  TapQuery("deployment", "emojivoto", "web"), top=True,
                  title="top deploy/web -n emojivoto", by=by)

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = pilot.app.screen
        await until(lambda: screen.state == "stream ended")
        await pilot.pause(1.5)  # one redraw a second shows all of it

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_replayed_request_detail_with_curl(snap_compare, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
    from tapkit import steps

    from meshtui.client.replay_source import ReplaySource
    from meshtui.model.tap_json import tap_json_line

    path = tmp_path / "saved.jsonl"
    lines = [tap_json_line(ev) for i in range(40)
             for ev in steps(i, status=(200, 503)[i % 4 == 3], path=f"/api/{i % 5}?page={i}")]
    path.write_text("\n".join([*lines, "not a tap event"]) + "\n")
    app = MeshApp(ReplaySource(path), TapQuery("namespace", None, None), buffer=1000,
                  title="tap ns (replay saved.jsonl)")

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = pilot.app.screen
        await until(lambda: screen.state == "stream ended")
        await pilot.pause(0.3)
        await pilot.press("up", "up", "enter")
        # The detail opens over the feed: wait for it, not a fixed time (a loaded
        # machine once captured the feed alone).
        await until(lambda: pilot.app.screen is not screen)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
