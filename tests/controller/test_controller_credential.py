"""The controller's API needs the credential `meshtui controller` writes for the local
user; the CLI reads it by default, and without it says in one line where it is expected."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

MESHTUI = str(Path(sys.executable).parent / "meshtui")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(server: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESHTUI, "--server", server, "stat", "ns"], capture_output=True,
                          text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)


def test_cli_uses_the_written_credential_and_fails_in_one_line_without(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("pods:\n  - {name: a-0, namespace: ns, deployment: a, address: 127.0.0.1:1}\n")
    server = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("MESHTUI_CREDENTIAL", None)
    ctl = subprocess.Popen([MESHTUI, "controller", "--listen", server, "--inventory", str(inv)],
                           env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        cred = tmp_path / "state" / "meshtui" / "credentials" / server.replace(":", "_")
        deadline = time.monotonic() + 15
        ok = None
        while time.monotonic() < deadline:
            if cred.exists():
                ok = _cli(server, env)
                if ok.returncode == 0:
                    break
            time.sleep(0.2)
        assert ok is not None and ok.returncode == 0, ok and ok.stderr
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600
        # Another user's view: no credential where this one looks.
        other = {**env, "XDG_STATE_HOME": str(tmp_path / "elsewhere")}
        out = _cli(server, other)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert str(tmp_path / "elsewhere") in lines[0] and "credential" in lines[0]
        # A wrong credential is no better.
        bad = tmp_path / "bad"
        bad.write_text("not-it")
        out = _cli(server, {**env, "MESHTUI_CREDENTIAL": str(bad)})
        assert out.returncode == 1 and "credential" in out.stderr
    finally:
        ctl.terminate()
        ctl.wait(timeout=10)


def test_a_second_controller_on_a_busy_address_leaves_the_first_ones_credential(
        tmp_path: Path) -> None:
    """Started again by mistake where one already listens, a controller fails to bind
    and exits 1 — without writing a credential the running one does not know."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("pods:\n  - {name: a-0, namespace: ns, deployment: a, address: 127.0.0.1:1}\n")
    server = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("MESHTUI_CREDENTIAL", None)
    args = [MESHTUI, "controller", "--listen", server, "--inventory", str(inv)]
    first = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        cred = tmp_path / "state" / "meshtui" / "credentials" / server.replace(":", "_")
        deadline = time.monotonic() + 15
        while not (cred.exists() and _cli(server, env).returncode == 0):
            assert time.monotonic() < deadline, "the first controller never answered"
            time.sleep(0.2)
        before = cred.read_bytes()
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert cred.read_bytes() == before
        assert _cli(server, env).returncode == 0
    finally:
        first.terminate()
        first.wait(timeout=10)


def test_a_controller_on_every_interface_writes_the_credential_where_local_clients_look(
) -> None:
    from meshtui.identity.credential import clients_address

    assert clients_address("0.0.0.0:8086") == "127.0.0.1:8086"
    assert clients_address("[::]:8086") == "127.0.0.1:8086"
    assert clients_address("127.0.0.2:9") == "127.0.0.2:9"
