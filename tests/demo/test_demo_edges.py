"""`meshtui edges` against the running demo: emojivoto's calls, from the controller and
from the demo's Prometheus."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from demokit import MESHTUI, PROMETHEUS

pytestmark = pytest.mark.slow

# Who calls whom in emojivoto: the vote bot calls web, web calls emoji and voting.
CALLS = {("vote-bot", "web"), ("web", "emoji"), ("web", "voting")}


def _edges(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHTUI, "--server", server, "edges", "deploy", "-n", "emojivoto",
                           *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def _failed_vote(doc: list[dict]) -> bool:  # type: ignore[type-arg]
    """One emoji of twenty always fails its vote: once one has been cast, web → voting
    shows failures."""
    return any(e["src"] == "web" and e["dst"] == "voting" and e["success"] is not None
               and e["success"] < 1.0 for e in doc)


def _until_calls(server: str, *args: str) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 60
    doc: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        out = _edges(server, "-o", "json", *args)
        # A Prometheus just started has scraped nothing yet, and says so (exit 1).
        assert out.returncode in (0, 1), out.stderr
        doc = json.loads(out.stdout) if out.returncode == 0 else []
        if {(e["src"], e["dst"]) for e in doc} >= CALLS and _failed_vote(doc):
            return doc
        time.sleep(1)
    pytest.fail(f"edges never showed {CALLS}: {doc}")


def test_edges_show_emojivotos_calls_from_the_controller_and_prometheus(demo) -> None:
    server = demo[0]
    doc = _until_calls(server)
    by = {(e["src"], e["dst"]): e for e in doc}
    assert all(e["src_namespace"] == "emojivoto" for e in doc), doc
    assert all(by[c]["dst_namespace"] == "emojivoto" for c in CALLS)
    # voting fails some votes on purpose; emoji does not.
    assert by["web", "emoji"]["success"] == 1.0
    assert 0.5 < by["web", "voting"]["success"] < 1.0
    for c in CALLS:
        assert by[c]["rps"] > 0 and by[c]["latency_ms_p99"] is not None, by[c]
    # Meshed to meshed: mutual TLS, all of it.
    assert all(by[c]["secured"] for c in CALLS), doc
    table = _edges(server)
    assert table.returncode == 0 and table.stderr == ""
    print(table.stdout)  # what the README shows
    assert table.stdout.splitlines()[0].split()[:5] == ["SRC", "DST", "SRC_NS", "DST_NS",
                                                        "SECURED"]

    prom = _until_calls(server, "--prometheus", PROMETHEUS["url"])
    assert {(e["src"], e["dst"]) for e in prom} >= CALLS
    # The series' tls label, as Linkerd's proxies write it.
    assert all(e["secured"] for e in prom if (e["src"], e["dst"]) in CALLS), prom
    # Both judge SECURED over the window: on every edge both see, they agree.
    ctl = {(e["src"], e["dst"]): e["secured"] for e in _until_calls(server)}
    both = ctl.keys() & {(e["src"], e["dst"]) for e in prom}
    assert both >= CALLS
    assert {k: ctl[k] for k in both} == {(e["src"], e["dst"]): e["secured"] for e in prom
                                         if (e["src"], e["dst"]) in both}, (ctl, prom)
