"""The dashboard in a real terminal (tmux) against the demo, driven by keys only."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from demokit import MESHTUI, _alive, _descendants, _free_port
from test_terminal import Terminal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (Debian package tmux)"),
]


def _argv0(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def _success(screen: str) -> float:
    """The success rate on the charts' "now" line (100 when there is none yet)."""
    m = re.search(r"^ now .*?success (\d+\.\d+)%", screen, re.M)
    return float(m.group(1)) if m else 100.0


def test_keyboard_reaches_voting_charts_and_tap_with_failures(demo) -> None:
    server, *_ = demo
    t = Terminal([*MESHTUI, "--server", server])  # no command: the dashboard
    try:
        screen = t.wait_for(lambda s: "reachable" in s and "fully meshed" in s
                            and "not meshed" in s and "kube-system" in s, timeout=20)
        assert "controller " + server + " up" in screen
        # Rows sort by name: default, emojivoto, kube-system, meshtui.
        t.keys("Home", "Down", "Enter")
        t.wait_for(lambda s: "overview › emojivoto › deployments" in s and "voting" in s)
        # emoji, vote-bot, voting, web: wait until the sparklines follow voting
        t.keys("Home", "Down", "Down")
        t.wait_for(lambda s: "SUCCESS · voting" in s)
        t.keys("c")
        # voting fails a share of its votes: the window's success rate says so (a demo
        # only just started may need a few seconds for its first failure)
        screen = t.wait_for(lambda s: "c charts" in s and "latency distribution" in s
                            and "history last 15m" in s and _success(s) < 100.0, timeout=40)
        assert "voting" in screen.splitlines()[0]
        t.keys("t")
        # Its failures are gRPC's: a doughnut vote ends with Unknown (2).
        screen = t.wait_for(lambda s: "VoteDoughnut" in s and "grpc-status=2" in s, timeout=30)
        assert "t tap" in screen and "deploy/voting" in screen
        t.keys("Escape")
        t.wait_for(lambda s: "overview › emojivoto › deployments" in s and "t tap" not in s)
        time.sleep(0.5)  # a key right after Escape would arrive as Alt+key
        t.keys("q")
        deadline = time.monotonic() + 5
        while t.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not t.alive(), "q did not quit"
    finally:
        t.close()


def test_demo_opens_the_dashboard_and_q_stops_the_whole_mesh() -> None:
    server = f"127.0.0.1:{_free_port()}"
    t = Terminal([*MESHTUI, "--server", server, "demo",
                  "--prometheus-listen", f"127.0.0.1:{_free_port()}"])
    try:
        t.wait_for(lambda s: "reachable" in s and "emojivoto" in s and "fully meshed" in s,
                   timeout=40)
        pane = int(t.run("display", "-p", "-t", t.name, "#{pane_pid}").stdout)
        mesh = _descendants(pane)
        assert len(mesh) >= 10  # the demo, its apps and their proxies, the controller
        binary = shutil.which("prometheus")
        if binary is not None:  # Prometheus is one of them, and goes with them
            assert any(_argv0(p) == binary for p in mesh)
        t.keys("q")
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in mesh) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in mesh if _alive(p)], "q left processes of the mesh running"
    finally:
        t.close()
