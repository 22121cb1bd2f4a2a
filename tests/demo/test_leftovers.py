"""A killed demo's state directory is removed by the next start; a running one's is not,
and neither are the logs a failed start keeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from meshtui.demo import leftovers


def test_only_what_a_dead_demo_claimed_is_swept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "meshtui"])
    try:
        gone = tmp_path / f"{leftovers.PREFIX}gone"
        running = tmp_path / f"{leftovers.PREFIX}running"
        kept = tmp_path / f"{leftovers.PREFIX}failed-start"
        for d in (gone, running, kept):
            d.mkdir()
            (d / "vote-bot.log").write_text("...")
        (gone / leftovers.OWNER).write_text(dead)
        (running / leftovers.OWNER).write_text(str(alive.pid))
        said: list[str] = []
        assert leftovers.sweep(said.append, tmp_path) == 1
        assert said == [f"removed what an earlier demo (pid {dead}, no longer running) left "
                        f"behind: its state directory {gone}"]
        assert not gone.exists() and running.exists() and kept.exists()
    finally:
        alive.kill()
        alive.wait()
