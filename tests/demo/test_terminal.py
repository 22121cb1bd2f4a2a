"""End to end in a real terminal: tmux runs meshtui against the demo; we read the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from demokit import MESHTUI

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (Debian package tmux)"),
]


class Terminal:
    def __init__(self, command: list[str]) -> None:
        self.name = f"mt-{uuid.uuid4().hex[:8]}"
        # Without COLUMNS and LINES (pytest-xdist's workers have 80x24 set), which
        # programs prefer to the terminal's real size.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        # A tmux server of its own: sessions of one shared server can be resized to
        # another session's size, and the screens read here depend on the width.
        self.run("new-session", "-d", "-s", self.name, "-x", "150", "-y", "40",
                 " ".join(command), check=True, env=env)

    def run(self, *args: str, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args],
                              capture_output=True, text=True, check=check, env=env)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys, check=True)

    def wait_for(self, ok: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if ok(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"screen never showed what was expected:\n{text}")

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.name).returncode == 0

    def close(self) -> None:
        self.run("kill-server")


@pytest.fixture
def terminal() -> Iterator[Callable[[list[str]], Terminal]]:
    made: list[Terminal] = []

    def make(command: list[str]) -> Terminal:
        t = Terminal(command)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def test_stat_live_table_sorts_drills_and_quits(demo, terminal) -> None:
    server, *_ = demo
    t = terminal([*MESHTUI, "--server", server, "stat", "ns"])
    t.wait_for(lambda s: "emojivoto" in s and "rps" in s and "connected" in s)
    t.keys("Down")
    screen = t.wait_for(lambda s: "controller " + server in s)
    assert "window 1m" in screen
    # sort by the next columns until RPS, then check the order on screen
    for _ in range(3):
        t.keys("s")
    screen = t.wait_for(lambda s: "sort RPS" in s)
    # drill into emojivoto: select it, Enter
    lines = screen.splitlines()
    rows = [ln.split()[0] for ln in lines[2:] if ln.strip() and not ln.startswith(" ")]
    idx = rows.index("emojivoto") if "emojivoto" in rows else 0
    t.keys("Home", *(["Down"] * idx), "Enter")
    screen = t.wait_for(lambda s: "emojivoto › deployments" in s and "voting" in s)
    assert "vote-bot" in screen and "%" in screen
    t.keys("Escape")
    t.wait_for(lambda s: "namespaces" in s.splitlines()[0])
    time.sleep(0.5)  # a key right after Escape would arrive as Alt+key
    t.keys("q")
    deadline = time.monotonic() + 5
    while t.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not t.alive(), "q did not quit"


def test_tap_feed_shows_requests_and_pauses(demo, terminal) -> None:
    server, *_ = demo
    t = terminal([*MESHTUI, "--server", server, "tap", "deploy/web", "-n", "emojivoto"])
    screen = t.wait_for(lambda s: s.count("req ") >= 3 and "events/s" in s)
    assert "deploy/web" in screen and ":status=" in screen
    t.keys("Space")
    t.wait_for(lambda s: "PAUSED" in s)
    t.keys("Space")
    t.wait_for(lambda s: "PAUSED" not in s)
    t.keys("/")
    t.wait_for(lambda s: "filter: GET and (status>=500" in s)  # the box's placeholder: it has focus
    t.keys("-l", "status=200")
    t.keys("Enter")
    screen = t.wait_for(lambda s: "filter: status=200" in s)
    assert ":status=500" not in screen
    t.keys("q")
