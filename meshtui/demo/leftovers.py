"""What a demo killed outright (SIGKILL, a crash of the machine's session) leaves
behind, found and removed by the next demo's start.

A running demo claims its state directory with its pid, and notes there the
prefix of the network namespaces it makes. A directory whose claimant is gone
is a leftover: its namespaces (whose iptables rules go with them), the
root-side interface of its bridge, and the directory itself. A failed start
gives up its claim on purpose, so that the logs it names stay for the user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from meshtui.demo.netns import PodNetwork

PREFIX = "meshtui-demo-"
OWNER = "owner.pid"
NETNS = "netns-prefix"


def claim(state: Path) -> None:
    (state / OWNER).write_text(str(os.getpid()))


def release(state: Path) -> None:
    """Keeps the directory for its logs: no later start will take it for a leftover."""
    with contextlib.suppress(OSError):
        (state / OWNER).unlink()


def record_netns(state: Path, prefix: str) -> None:
    (state / NETNS).write_text(prefix)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a meshtui process still (not a later process given the number)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"meshtui" in cmdline


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def sweep(log: Callable[[str], None], tmp: Path | None = None) -> int:
    """Removes every leftover of a dead demo, saying so in one line each; returns how many."""
    found = 0
    for state in sorted(Path(tmp or tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            pid = int((state / OWNER).read_text())
        except (OSError, ValueError):
            continue  # not claimed: a running demo's start, or kept logs
        if _alive(pid):
            continue
        removed = []
        with contextlib.suppress(OSError):
            prefix = (state / NETNS).read_text().strip()
            if prefix and shutil.which("ip"):
                gone = [ns for ns in _namespaces() if ns.startswith(prefix + "-")]
                for ns in gone:
                    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
                if gone:
                    removed.append(f"{len(gone)} network namespaces")
                root_if = PodNetwork(prefix=prefix).root_if
                link = subprocess.run(["ip", "link", "del", root_if], capture_output=True)
                if link.returncode == 0:
                    removed.append(f"interface {root_if}")
        shutil.rmtree(state, ignore_errors=True)
        removed.append(f"its state directory {state}")
        log(f"removed what an earlier demo (pid {pid}, no longer running) left behind: "
            + ", ".join(removed))
        found += 1
    return found
