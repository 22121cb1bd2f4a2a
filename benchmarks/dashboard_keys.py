"""The dashboard's key answers with 500 pods in view, against a real controller.

A process of fake proxies (benchmarks/controller_fakes.py: one gRPC server
each, answering the controller's scrapes with advancing counters and latency
histograms) stands for the pods: ``--pods`` of them replicas of one
deployment ``load/svc`` (as ``meshtui demo --scale`` makes replicas), and 40
more in four small namespaces. ``meshtui controller`` runs in its own process
and scrapes them all every second. This process runs the dashboard on the
controller (ControllerSource, refresh every second, as ``meshtui`` runs it) and
moves with keys only: the overview (the selected namespace's charts follow
the selection), Enter to ``load``'s deployments, Enter to svc's pods (the
table of 500), then ``c`` for one pod's charts.

A key's answer time runs from the key entering the app to the first frame
drawn after its action ran. Keys come about four a second.

Target: a key answered within 100 ms.
Run: .venv/bin/python benchmarks/dashboard_keys.py [--pods 500] [--presses 80]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controller_fakes import app_addr, stop  # noqa: E402

SMALL = [(f"team-{t}", f"api-{d}") for t in "abcd" for d in (1, 2)]  # 5 pods each


def inventory(ports: list[int], pods: int) -> dict:
    out = []
    for i, port in enumerate(ports):
        if i < pods:
            ns, dep, name = "load", "svc", f"svc-{i:05d}"
        else:
            ns, dep = SMALL[(i - pods) // 5]
            name = f"{dep}-{i:05d}"
        out.append({"name": name, "namespace": ns, "deployment": dep,
                    "address": app_addr(i), "proxy": f"127.0.0.1:{port}"})
    return {"pods": out}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(app, pilot, keys: list[str]) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    """(answer ms, this process's CPU ms) of each key, about four a second.

    The CPU figure is what the app spent between the key and the frame; the
    rest of an answer's time is waiting for a core (the controller and the
    fake proxies share the machine's two).
    """
    from textual import events

    frames: list[tuple[float, float]] = []
    display = app._display

    def timed_display(screen, renderable):  # type: ignore[no-untyped-def]
        frames.append((time.perf_counter(), time.process_time()))
        return display(screen, renderable)

    app._display = timed_display
    out = []
    try:
        for key in keys:
            frames.clear()
            k, c = time.perf_counter(), time.process_time()
            app.post_message(events.Key(key, None))
            deadline = k + 5
            while not frames and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            if frames:
                out.append(((frames[0][0] - k) * 1000, (frames[0][1] - c) * 1000))
            else:
                out.append((float("inf"), float("inf")))
            await pilot.pause(0.25)
    finally:
        app._display = display
    return out


def report(what: str, results: list[tuple[float, float]]) -> bool:
    times = sorted(t for t, _ in results)
    cpu = sorted(c for _, c in results)
    p95 = times[int(len(times) * 0.95) - 1] if len(times) >= 20 else times[-1]
    print(f"{what}: {len(times)} keys, median {statistics.median(times):.0f} ms, "
          f"p95 {p95:.0f} ms, max {times[-1]:.0f} ms (target <= 100 ms); "
          f"app CPU per key median {statistics.median(cpu):.0f} ms, max {cpu[-1]:.0f} ms",
          flush=True)
    return times[-1] <= 100


async def wait_for(pilot, test, what: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        await pilot.pause(0.1)


async def drive(server: str, pods: int, presses: int) -> bool:
    from meshtui.runtime import tune_gc_for_ui

    tune_gc_for_ui()  # as meshtui runs the app
    from meshtui.client.controller_source import ControllerSource
    from meshtui.client.queries import StatQuery
    from meshtui.tui.app import MeshApp
    from meshtui.tui.resource_views import ChartsScreen

    app = MeshApp(ControllerSource(server), StatQuery("namespace"), dashboard=True, interval=1.0)
    ok = True
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.screen.table.row_count == 5, "the namespaces")  # type: ignore[attr-defined]
        await pilot.pause(2.0)
        ok &= report("overview, 5 namespaces (charts follow the selection)",
                     await measure(app, pilot, ["down", "down", "up", "up"] * (presses // 16)))
        await pilot.press("home")
        await pilot.pause(1.0)
        names = app.screen.table.row_names()  # type: ignore[attr-defined]
        for _ in range(names.index("load")):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "svc" in app.screen.table.row_names(), "load's deployments")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.table.row_count == pods, f"{pods} pods")  # type: ignore[attr-defined]
        await pilot.pause(2.0)
        print(f"pods in view: {app.screen.table.row_count}")  # type: ignore[attr-defined]
        ok &= report(f"{pods} pods, live table, Down",
                     await measure(app, pilot, ["down"] * presses))
        ok &= report(f"{pods} pods, live table, s (sort by the next column)",
                     await measure(app, pilot, ["s"] * (presses // 4)))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChartsScreen)
                       and len(app.screen.history) > 0, "one pod's charts")
        await pilot.pause(1.5)
        # ? opens and closes the key list over the charts
        ok &= report("one pod's charts, ? (the key list opens and closes)",
                     await measure(app, pilot, ["question_mark"] * (presses // 4)))
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=500)
    p.add_argument("--presses", type=int, default=80)
    args = p.parse_args()
    total = args.pods + 5 * len(SMALL)
    fakes = subprocess.Popen(
        [sys.executable, str(HERE / "controller_fakes.py"), "metrics", "--proxies", str(total),
         "--routes", "2", "--rps", "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    controller = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            assert fakes.stdout is not None
            ports = json.loads(fakes.stdout.readline())["ports"]
            inv = Path(tmp) / "inventory.json"
            inv.write_text(json.dumps(inventory(ports, args.pods)))
            server = f"127.0.0.1:{free_port()}"
            controller = subprocess.Popen(
                [sys.executable, "-m", "meshtui", "controller", "--listen", server,
                 "--inventory", str(inv)], stderr=subprocess.DEVNULL)
            print(f"{total} fake proxies scraped every second by meshtui controller at {server}")
            ok = asyncio.run(drive(server, args.pods, args.presses))
        finally:
            stop(fakes, controller)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
