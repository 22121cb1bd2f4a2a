"""The dashboard's look, pinned: each main view over the deterministic fake mesh.

A fixed clock, one stats refresh (a long interval) and a finite tap stream make
every frame the same from run to run. Regenerate after an intended change with
`pytest tests/tui/test_dashboard_snapshots.py --snapshot-update` and look at
the report before committing.
"""

from __future__ import annotations

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import StatQuery
from meshtui.tui.app import MeshApp

NOW = 1_764_000_000.0
SIZE = (140, 40)


def dashboard() -> MeshApp:
    source = FakeSource(clock=lambda: NOW, tap_rps=2000, tap_requests=200)
    return MeshApp(source, StatQuery("namespace"), dashboard=True, interval=3600,
                   clock=lambda: NOW)


def keys(*steps: tuple[str, ...] | float):  # type: ignore[no-untyped-def]
    """A run_before that presses keys and pauses between groups."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(0.8)
        for step in steps:
            if isinstance(step, float):
                await pilot.pause(step)
            else:
                await pilot.press(*step)
        await pilot.pause(0.8)

    return run


# Namespaces sort by name: default, emojivoto, …; emojivoto's deployments:
# emoji, vote-bot, voting, web.
TO_VOTING = (("home", "down", "enter"), 0.6, ("home", "down", "down"), 0.4)


def test_overview(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=keys())


def test_deployments_with_breadcrumbs(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(dashboard(), terminal_size=SIZE,
                        run_before=keys(("home", "down", "enter"), 0.6))


def test_pods_of_voting(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(dashboard(), terminal_size=SIZE,
                        run_before=keys(*TO_VOTING, ("enter",), 0.6))


def test_charts_of_voting(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(dashboard(), terminal_size=SIZE,
                        run_before=keys(*TO_VOTING, ("c",), 0.8))


def test_tap_of_voting_in_place(snap_compare) -> None:  # type: ignore[no-untyped-def]
    # The fake stream ends within 0.1 s, sometimes before the feed has its size;
    # End (follow) pins the view to the last request whichever came first.
    assert snap_compare(dashboard(), terminal_size=SIZE,
                        run_before=keys(*TO_VOTING, ("t",), 1.0, ("end",), 0.3))


def test_top_of_voting_in_place(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(dashboard(), terminal_size=SIZE,
                        run_before=keys(*TO_VOTING, ("o",), 1.5))


def test_keys_on_the_overview(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=keys(("question_mark",)))
