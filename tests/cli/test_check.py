"""`meshtui check` and the controller's log against an inventory whose names hold
terminal control sequences: shown as escapes, never obeyed."""

from __future__ import annotations

import time
from pathlib import Path

from meshkit import controller, free_port

# Sets the terminal's title, then clears the screen.
HOSTILE = "web\x1b]0;PWNED\x07\x1b[2J-0"


def test_check_and_the_controller_log_show_hostile_names_escaped(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"  # the pod's proxy: nothing answers there
    pods = [{"name": HOSTILE, "namespace": "ns\u202eevil", "deployment": "web",
             "address": f"127.0.0.1:{free_port()}", "proxy": dead}]
    with controller(tmp_path, pods) as mesh:
        deadline = time.monotonic() + 20
        while "failed a scrape" not in mesh.controller_log.read_text(errors="replace"):
            assert time.monotonic() < deadline, mesh.controller_log.read_text()
            time.sleep(0.1)
        out = mesh.cli("check")
    assert out.returncode == 1, out.stdout + out.stderr
    unreachable = [line for line in out.stdout.splitlines() if "unreachable:" in line]
    assert unreachable == [
        "    unreachable: ns\\u202eevil/web\\x1b]0;PWNED\\x07\\x1b[2J-0"], out.stdout
    log = mesh.controller_log.read_bytes().decode("utf-8", "backslashreplace")
    assert "\x1b" not in log and "\x07" not in log and "\u202e" not in log, log
    assert "proxy of ns\\u202eevil/web\\x1b]0;PWNED\\x07\\x1b[2J-0 at" in log, log
