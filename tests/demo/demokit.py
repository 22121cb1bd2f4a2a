"""The real demo mesh, started once for every test in this folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

MESHTUI = [sys.executable, "-m", "meshtui"]


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
    proc = subprocess.Popen([*MESHTUI, "--server", server, "demo", "--headless"],
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
    yield server, proc, started, state
    children = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    time.sleep(0.5)
    left = [p for p in children if _alive(p)]
    assert not left, f"processes left behind: {left}"


