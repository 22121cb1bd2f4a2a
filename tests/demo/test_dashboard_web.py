"""`meshtui dashboard --web` against the demo, opened in headless Chromium."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from browser import Browser, find_chromium
from demokit import MESHTUI, _free_port

pytestmark = pytest.mark.slow
NAMESPACES = ("emojivoto", "kube-system", "meshtui", "default")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_overview_renders_in_a_browser(demo, tmp_path: Path) -> None:
    found = find_chromium()
    if found is None:
        pytest.skip("needs chromium and chromedriver (Debian packages chromium, chromium-driver)")
    server, *_ = demo
    port = _free_port()
    web = subprocess.Popen([*MESHTUI, "--server", server, "dashboard", "--web", "--port",
                            str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    browser = None
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert web.poll() is None, web.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "dashboard --web never listened"
            time.sleep(0.1)
        # Bound to this machine only.
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        assert out.stdout and all("127.0.0.1:" in ln for ln in out.stdout.splitlines())
        browser = Browser(*found)
        browser.open(f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 40
        text = ""
        while time.monotonic() < deadline:
            text = browser.screen_text()
            if all(ns in text for ns in NAMESPACES) and "reachable" in text:
                break
            time.sleep(0.5)
        assert all(ns in text for ns in NAMESPACES), text[-2000:]
        assert "fully meshed" in text and "not meshed" in text
        assert "controller" in text and "reachable" in text
        assert browser.drawing()  # the page's terminal got the output
        browser.screenshot(tmp_path / "dashboard-web.png")
        assert (tmp_path / "dashboard-web.png").stat().st_size > 10_000
    finally:
        if browser is not None:
            browser.close()
        web.terminate()
        web.wait(timeout=15)
