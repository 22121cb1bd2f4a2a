"""Requests the proxy refuses count as failures in every view: `stat` (from the
proxy's counters) and `top` (from tap) say the same."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from meshkit import MESHTUI, Pod, one_pod_mesh, process

# A request line with raw bytes past ASCII in its target: malformed, refused with 400
# by the proxy itself, and never passed to the app.
MALFORMED = b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"


def test_a_request_the_proxy_refuses_is_a_failure_in_top_as_in_stat(tmp_path: Path) -> None:
    with one_pod_mesh(tmp_path, Pod("emojivoto", "web", "web-0")) as mesh:
        out = tmp_path / "top.json"
        with process([*MESHTUI, "--server", mesh.server, "top", "ns/emojivoto", "-o", "json",
                      "--sample", "6"], stdout=out.open("w"), stderr=subprocess.STDOUT) as top:
            time.sleep(2.5)  # (top's stream is open by then: it starts in about a second)
            for _ in range(5):
                assert mesh.send(MALFORMED) == b"HTTP/1.1 400 Bad Request"
            assert top.wait(30) == 0, out.read_text()
        routes = json.loads(out.read_text())
        deadline = time.monotonic() + 10
        while True:  # the controller's next scrape brings the refusals to stat
            stat = json.loads(mesh.cli("stat", "deploy", "-n", "emojivoto", "-o", "json").stdout)
            if (stat and stat[0]["rps"]) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    assert [r["success"] for r in stat] == [0.0], stat
    assert sum(r["count"] for r in routes) == 5, routes
    assert [r["success"] for r in routes] == [0.0], routes
