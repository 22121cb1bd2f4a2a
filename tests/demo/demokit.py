"""The real demo mesh, started once for every test in this folder; asking its Prometheus."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

MESHTUI = [sys.executable, "-m", "meshtui"]
#: Seconds from the demo's start until web, emoji and voting all had a rate
#: (inf if that did not happen within 60 s).
STARTUP: dict[str, float] = {}
#: The shared demo's Prometheus (on a port of its own, so that demos of other
#: test runs on this machine do not take it): ``url``.
PROMETHEUS: dict[str, str] = {}


def _first_stats(server: str, started: float) -> float:
    import asyncio

    from meshtui.client.controller import ControllerClient
    from meshtui.client.convert import selector, stat_row
    from meshtui.v1 import controller_pb2

    async def rates() -> dict[str, float | None]:
        async with ControllerClient(server) as c:
            resp = await c.summary(controller_pb2.StatRequest(
                selector=selector("deployment", "emojivoto", None), window_s=60))
        return {r.name: r.rps for r in map(stat_row, resp.rows)}

    while time.monotonic() - started < 60:
        try:
            r = asyncio.run(rates())
        except Exception:  # not serving yet
            r = {}
        if all(r.get(d) for d in ("web", "emoji", "voting")):
            return time.monotonic() - started
        time.sleep(0.25)
    return float("inf")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    todo, seen = [pid], []
    while todo:
        for c in children.get(todo.pop(), []):
            seen.append(c)
            todo.append(c)
    return seen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="package")
def demo():
    port = _free_port()
    server = f"127.0.0.1:{port}"
    prometheus = f"127.0.0.1:{_free_port()}"
    PROMETHEUS["url"] = f"http://{prometheus}"
    # Its Prometheus scrapes every 2 s rather than viz's 10: a minute of figures
    # then extrapolates over 2 s at its edges, not 10, and the tests that compare it
    # with the controller can ask for 5 % (bursty load extrapolated over 10 s is off
    # by up to a burst).
    proc = subprocess.Popen([*MESHTUI, "--server", server, "demo", "--headless",
                             "--prometheus-listen", prometheus, "--prometheus-interval", "2s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    line = ""
    while time.monotonic() - started < 60:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        if "controller at" in line or proc.poll() is not None:
            break
    if proc.poll() is not None:
        pytest.fail(f"demo exited early: {line}{proc.stderr.read()}")  # type: ignore[union-attr]
    state = Path(line.split("logs in ", 1)[1].split(";", 1)[0])
    # Measured here, whichever test comes first: later ones meet a demo long up.
    STARTUP["first_stats_s"] = _first_stats(server, started)
    yield server, proc, started, state
    children = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    time.sleep(0.5)
    left = [p for p in children if _alive(p)]
    assert not left, f"processes left behind: {left}"


T = TypeVar("T")
# Calls to Prometheus go straight to it, whatever proxy the test run is given.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api(url: str, path: str, **params: str) -> Any:
    """The ``data`` of a Prometheus API answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with _OPENER.open(f"{url}{path}{query}", timeout=5) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]


def until(get: Callable[[], T], ok: Callable[[T], bool], timeout: float) -> T:
    """Polls ``get`` until ``ok`` holds of its value; fails with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = get()
        except OSError as e:  # not answering yet
            value = e  # type: ignore[assignment]
        else:
            if ok(value):
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s; last: {value}")
        time.sleep(0.5)


def by_label(url: str, query: str, label: str) -> dict[str, float]:
    """An instant query's answer, one value per value of ``label``."""
    return {r["metric"].get(label, ""): float(r["value"][1])
            for r in api(url, "/api/v1/query", query=query)["result"]}
