"""Headless Chromium driven through chromedriver's HTTP API (no client library).

The dashboard in a browser is an xterm.js terminal drawn on a canvas, so the
page's DOM holds no text to read. Before the page loads, a script wraps the
page's WebSocket and keeps, decoded, every byte the app sends to the
terminal; a test reads that back (escape sequences stripped) along with
whether the terminal has started drawing, and can take a screenshot.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]

# Runs before the page's own scripts: every frame the app sends is kept as text.
CAPTURE = """
(() => {
  const Native = window.WebSocket;
  window.__meshtuiScreen = "";
  const decoder = new TextDecoder();
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") {
        window.__meshtuiScreen += decoder.decode(new Uint8Array(e.data), {stream: true});
      }
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
"""

_ESCAPES = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
                      r"|\x1b\].*?(\x07|\x1b\\)")


def find_chromium() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return chromium, driver


def plain(stream: str) -> str:
    """Terminal output without its escape sequences."""
    return _ESCAPES.sub("", stream)


class Browser:
    """One chromedriver with one headless Chromium session."""

    def __init__(self, chromium: str, driver: str, width: int = 1400, height: int = 900) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.profile = tempfile.mkdtemp(prefix="meshtui-chromium-")
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}"]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]
        self._call("POST", f"/session/{self.session}/goog/cdp/execute",
                   {"cmd": "Page.addScriptToEvaluateOnNewDocument",
                    "params": {"source": CAPTURE}})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"null").get("value")

    def open(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def run(self, script: str) -> Any:
        return self._call("POST", f"/session/{self.session}/execute/sync",
                          {"script": script, "args": []})

    def screen_text(self) -> str:
        """Everything the app has drawn so far, as plain text."""
        return plain(self.run("return window.__meshtuiScreen || '';") or "")

    def drawing(self) -> bool:
        """Whether the page's terminal has received output (the page marks it so)."""
        return bool(self.run(
            "return document.body.classList.contains('-first-byte');"))

    def screenshot(self, path: Path) -> None:
        png = self._call("GET", f"/session/{self.session}/screenshot")
        path.write_bytes(base64.b64decode(png))

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}")
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
