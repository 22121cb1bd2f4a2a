"""Captures the TUI's main views from the running demo into screenshots/*.svg.

Starts `meshtui demo --headless` on a free port, lets it run for two minutes (so
the charts have some history and voting some failures), drives the real app
(through the real gRPC source) to each view with keys and saves what it shows:
the dashboard (overview, deployments, pods, charts, tap, top, the key list),
the dashboard over the demo's Prometheus, and the stat, tap and top commands.
With --attach (and --prometheus, --span) it captures a demo already running,
for charts over a longer run than a warm-up gives. Run: `make screenshots` (or
.venv/bin/python scripts/screenshots.py [--warmup SECONDS]).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "screenshots"
SIZE = (150, 42)


async def capture(server: str, prometheus: str | None, span_s: int, only: str,
                  suffix: str = "") -> list[Path]:
    from meshtui.client.controller_source import ControllerSource
    from meshtui.client.queries import StatQuery, TapQuery
    from meshtui.client.source import open_source
    from meshtui.tui.app import MeshApp
    from meshtui.tui.chart_data import ChartRange
    from meshtui.tui.stat_table import StatTable

    saved: list[Path] = []

    async def shot(app: MeshApp, name: str, drive) -> None:  # type: ignore[no-untyped-def]
        async with app.run_test(size=SIZE) as pilot:
            await drive(pilot, app)
            path = OUT / f"{name}.svg"
            app.save_screenshot(str(path))
            saved.append(path)

    async def namespaces(pilot, app) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(3.0)

    async def drill(names: list[str]):  # type: ignore[no-untyped-def]
        async def go(pilot, app) -> None:  # type: ignore[no-untyped-def]
            await pilot.pause(2.0)
            for name in names:
                table = app.screen.query_one(StatTable)
                table.select_index(table.row_names().index(name))
                await pilot.press("enter")
                await pilot.pause(2.5)
        return go

    async def tap(pilot, app) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(4.0)

    async def tap_detail(pilot, app) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(3.0)
        await pilot.press("up", "up", "enter")
        await pilot.pause(0.5)

    async def top(pilot, app) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(6.0)

    async def help_panel(pilot, app) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(2.0)
        await pilot.press("question_mark")
        await pilot.pause(0.5)

    def dashboard() -> MeshApp:
        return MeshApp(ControllerSource(server), StatQuery("namespace"), dashboard=True)

    def to(into: list[str], pick: str | None = None, *keys: str, wait: float = 2.5):  # type: ignore[no-untyped-def]
        """Enter the rows named ``into`` one level after another, select ``pick``,
        then press ``keys``: as a user would with the arrows, Enter and a key."""
        async def select(app, name: str) -> None:  # type: ignore[no-untyped-def]
            table = app.screen.query_one(StatTable)
            table.select_index(table.row_names().index(name))

        async def go(pilot, app) -> None:  # type: ignore[no-untyped-def]
            await pilot.pause(3.0)
            for name in into:
                await select(app, name)
                await pilot.press("enter")
                await pilot.pause(2.0)
            if pick is not None:
                await select(app, pick)
                await pilot.pause(0.5)
            if keys:
                await pilot.press(*keys)
            await pilot.pause(wait)
        return go

    if prometheus is not None and only != "graph":
        def over_prometheus() -> MeshApp:
            return MeshApp(open_source(server, prometheus), StatQuery("namespace"),
                           dashboard=True, chart_range=ChartRange(span_s))

        await shot(over_prometheus(), f"prometheus-overview{suffix}",
                   to([], "emojivoto", wait=4.0))
        await shot(over_prometheus(), f"prometheus-charts{suffix}",
                   to(["emojivoto"], "voting", "c", wait=5.0))
    if only == "prometheus":
        return saved
    await shot(dashboard(), "dashboard-graph", to([], "emojivoto", "g", wait=3.0))
    if only == "graph":
        return saved
    await shot(dashboard(), "overview", to([], "emojivoto", wait=3.0))
    await shot(dashboard(), "dashboard-deployments", to(["emojivoto"], "voting", wait=1.0))
    await shot(dashboard(), "dashboard-pods", to(["emojivoto", "voting"]))
    await shot(dashboard(), "charts", to(["emojivoto"], "voting", "c", wait=4.0))
    await shot(dashboard(), "dashboard-tap", to(["emojivoto"], "voting", "t", wait=4.0))
    await shot(dashboard(), "dashboard-top", to(["emojivoto"], "voting", "o", wait=6.0))
    await shot(dashboard(), "dashboard-help", to([], "emojivoto", "question_mark", wait=1.0))

    web = TapQuery("deployment", "emojivoto", "web")
    await shot(MeshApp(ControllerSource(server), StatQuery("namespace")), "stat-namespaces",
               namespaces)
    await shot(MeshApp(ControllerSource(server), StatQuery("namespace")), "stat-deployments",
               await drill(["emojivoto"]))
    await shot(MeshApp(ControllerSource(server), StatQuery("namespace")), "stat-pods",
               await drill(["emojivoto", "voting"]))
    await shot(MeshApp(ControllerSource(server), web, title="tap deploy/web -n emojivoto"), "tap",
               tap)
    await shot(MeshApp(ControllerSource(server), web, title="tap deploy/web -n emojivoto"),
               "tap-detail", tap_detail)
    await shot(MeshApp(ControllerSource(server), web, top=True,
                       title="top deploy/web -n emojivoto"),
               "top", top)
    await shot(MeshApp(ControllerSource(server), StatQuery("deployment", "emojivoto")), "help",
               help_panel)
    return saved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="seconds the demo runs before the first capture (default 120)")
    ap.add_argument("--attach", metavar="HOST:PORT",
                    help="capture a demo already running there instead of starting one "
                    "(with --prometheus, its Prometheus: for charts over a longer run)")
    ap.add_argument("--prometheus", metavar="URL", help="the attached demo's Prometheus")
    ap.add_argument("--span", default="15m", help="what the Prometheus charts cover")
    ap.add_argument("--only", choices=("all", "prometheus", "graph"), default="all")
    ap.add_argument("--suffix", default="", help="added to the Prometheus captures' names")
    args = ap.parse_args()
    from meshtui.model.units import MAX_PROMETHEUS_WINDOW_S, parse_window

    span_s = parse_window(args.span, MAX_PROMETHEUS_WINDOW_S)
    OUT.mkdir(exist_ok=True)
    if args.attach:
        for path in asyncio.run(capture(args.attach, args.prometheus, span_s, args.only,
                                        args.suffix)):
            print(f"wrote {path.relative_to(OUT.parent)}")
        return 0
    server, prom = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    cmd = [sys.executable, "-m", "meshtui", "--server", server]
    demo = subprocess.Popen([*cmd, "demo", "--headless", "--prometheus-listen", prom],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run([*cmd, "stat", "deploy", "-n", "emojivoto", "-o", "json"],
                                 capture_output=True, text=True)
            if out.returncode == 0 and sum(bool(r["rps"]) for r in json.loads(out.stdout)) >= 3:
                break
            time.sleep(0.5)
        time.sleep(args.warmup)  # history for the charts, failures for voting
        prometheus = f"http://{prom}" if shutil.which("prometheus") else None
        for path in asyncio.run(capture(server, prometheus, span_s, args.only)):
            print(f"wrote {path.relative_to(OUT.parent)}")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
