"""A controller that stops answering is named so, apart from one that cannot be
reached, within 10 s: a tap stream whose controller freezes ends rather than sits
silent, and a fresh command against something that listens but never answers
does not send the user off to start a demo."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from meshkit import MESHTUI, Pod, one_pod_mesh, process

WITHIN_S = 10.0


@pytest.fixture
def hung_listener() -> Iterator[str]:
    """A socket that accepts connections and never says a word."""
    held: list[socket.socket] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        s.settimeout(0.2)

        def accept() -> None:
            while s.fileno() != -1:
                try:
                    held.append(s.accept()[0])
                except TimeoutError:
                    continue
                except OSError:
                    return

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        yield f"127.0.0.1:{s.getsockname()[1]}"
    t.join(1)
    for c in held:
        c.close()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def timed(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    out = subprocess.run([*MESHTUI, *args], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    return out, time.monotonic() - t0


@pytest.mark.parametrize("args", [("tap", "deploy/web", "-n", "emojivoto", "-o", "json"),
                                  ("top", "deploy/web", "-n", "emojivoto", "-o", "json"),
                                  ("stat", "deploy", "-n", "emojivoto", "-o", "json"),
                                  ("check",)])
def test_something_that_listens_but_never_answers_is_not_answering(
        hung_listener: str, args: tuple[str, ...]) -> None:
    out, took = timed("--server", hung_listener, *args)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert f"the controller at {hung_listener} is not answering" in text, text
    assert "meshtui demo" not in text and "cannot reach" not in text, text
    assert took < WITHIN_S, took
    if args[0] != "check":  # (check prints its report on stdout)
        one_line(out.stderr)


def test_a_tap_whose_controller_freezes_ends_saying_so(tmp_path: Path) -> None:
    with one_pod_mesh(tmp_path, Pod("emojivoto", "web", "web-0")) as mesh:
        out, err = tmp_path / "tap.out", tmp_path / "tap.err"
        with process([*MESHTUI, "--server", mesh.server, "tap", "ns/emojivoto", "-o", "json"],
                     stdout=out.open("w"), stderr=err.open("w")) as tap:
            deadline = time.monotonic() + 30
            while not out.read_text():  # the stream is up and carries events
                assert time.monotonic() < deadline and tap.poll() is None, err.read_text()
                mesh.send(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
                time.sleep(0.2)
            mesh.controller.send_signal(signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                code = tap.wait(30)
                took = time.monotonic() - t0
                # A fresh command meets the same frozen controller.
                fresh, fresh_took = timed("--server", mesh.server, "tap", "ns/emojivoto",
                                          "-o", "json")
            finally:
                mesh.controller.send_signal(signal.SIGCONT)
    assert code == 1 and took < WITHIN_S, (code, took, err.read_text())
    assert f"the controller at {mesh.server} is not answering" in one_line(err.read_text())
    assert fresh.returncode == 1 and fresh_took < WITHIN_S, (fresh_took, fresh.stderr)
    assert f"the controller at {mesh.server} is not answering" in one_line(fresh.stderr)
