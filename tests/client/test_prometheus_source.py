"""The Prometheus source against a real Prometheus scraping exporters of known figures."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from promkit import WINDOW, Prometheus, needs_prometheus

from meshtui.client.prometheus_source import PrometheusSource
from meshtui.client.queries import StatQuery

pytestmark = [needs_prometheus, pytest.mark.slow]



def stats(prom: Prometheus, q: StatQuery):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        src = PrometheusSource(prom.url)
        try:
            return await src.stats(q)
        finally:
            await src.close()

    return asyncio.run(go())


def by_name(snap) -> dict:  # type: ignore[no-untyped-def]
    return {r.name: r for r in snap.rows}


def test_deployments_have_viz_figures_and_meshed_from_the_targets(prom: Prometheus) -> None:
    snap = stats(prom, StatQuery("deployment", "emojivoto", window_s=WINDOW))
    rows = by_name(snap)
    assert set(rows) == {"web", "voting"}
    web, voting = rows["web"], rows["voting"]
    assert web.rps == pytest.approx(20, rel=0.1)
    assert web.success == pytest.approx(0.9, abs=0.01)
    # Every request took 4 ms, in the (3, 4] bucket: Prometheus interpolates in it.
    assert 3 <= web.p50_ms <= 4 and 3 <= web.p99_ms <= 4
    assert web.tcp_conn == 6  # inbound only: web-1's outbound connection is not counted
    assert web.read_bytes_rate == pytest.approx(2000, rel=0.1)  # two pods, 1000 B/s each
    assert (web.meshed, web.total) == (2, 2)
    assert voting.rps == pytest.approx(5, rel=0.1) and voting.success == 1.0
    assert 20 <= voting.p50_ms <= 30
    assert (voting.meshed, voting.total, voting.reachable) == (1, 2, False)
    assert (snap.proxies_reachable, snap.proxies_total) == (3, 4)
    assert snap.last_scrape is not None and time.time() - snap.last_scrape < 5


def test_to_and_from_select_outbound_traffic_as_viz_does(prom: Prometheus) -> None:
    to = by_name(stats(prom, StatQuery("deployment", "emojivoto", "web", WINDOW,
                                       to=("deployment", "emojivoto", "voting"))))
    assert set(to) == {"web"} and to["web"].rps == pytest.approx(5, rel=0.1)
    frm = by_name(stats(prom, StatQuery("deployment", "emojivoto", window_s=WINDOW,
                                        from_=("deployment", "emojivoto", "web"))))
    assert set(frm) == {"voting"} and frm["voting"].rps == pytest.approx(5, rel=0.1)


def test_namespaces_and_a_deployments_pods(prom: Prometheus) -> None:
    ns = by_name(stats(prom, StatQuery("namespace", window_s=WINDOW)))
    assert set(ns) == {"emojivoto"} and ns["emojivoto"].key == ("namespace", "", "emojivoto")
    assert ns["emojivoto"].rps == pytest.approx(25, rel=0.1)
    assert (ns["emojivoto"].meshed, ns["emojivoto"].total) == (3, 4)
    pods = by_name(stats(prom, StatQuery("pod", "emojivoto", window_s=WINDOW, owner="web")))
    assert set(pods) == {"web-1", "web-2"}
    assert pods["web-1"].rps == pytest.approx(10, rel=0.1) and pods["web-1"].owner == "web"
    assert pods["web-2"].success == 1.0


def test_history_is_per_step_over_the_span(prom: Prometheus) -> None:
    async def go():  # type: ignore[no-untyped-def]
        src = PrometheusSource(prom.url)
        try:
            return await src.history(StatQuery("deployment", "emojivoto", "web"), 60, 2)
        finally:
            await src.close()

    hist = asyncio.run(go())
    points = hist[("deployment", "emojivoto", "web")]
    # A point every 2 s, where there is data (the exporters started seconds ago).
    assert len(points) >= 5
    assert {b.at - a.at for a, b in itertools.pairwise(points)} == {2.0}
    # Each point's rate covers four scrapes (the test server scrapes every second).
    settled = [p for p in points if p.at >= points[0].at + 6]
    assert settled and all(p.rps == pytest.approx(20, rel=0.15) for p in settled)
    assert all(p.success == pytest.approx(0.9, abs=0.02) for p in settled)
    assert all(3 <= p.p50_ms <= 4 for p in settled)


def meshtui(*args: str, timeout: float = 30, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshtui", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def test_stat_prints_linkerd_json_from_prometheus(prom: Prometheus) -> None:
    out = meshtui("stat", "deploy", "-n", "emojivoto", "--prometheus", prom.url,
                  "-t", f"{WINDOW}s", "-o", "json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["web"]["meshed"] == "2/2" and rows["voting"]["meshed"] == "1/2"
    assert rows["web"]["rps"] == pytest.approx(20, rel=0.1)
    # MESHTUI_PROMETHEUS does what --prometheus does.
    table = meshtui("stat", "deploy", "-n", "emojivoto", "-t", f"{WINDOW}s",
                    env={"MESHTUI_PROMETHEUS": prom.url})
    assert table.returncode == 0, table.stderr
    lines = [line.split() for line in table.stdout.splitlines()]
    assert lines[0][:3] == ["NAME", "MESHED", "SUCCESS"]
    assert [line[:2] for line in lines[1:]] == [["voting", "1/2"], ["web", "2/2"]]


def test_absolute_range_reads_the_past(prom: Prometheus) -> None:
    # The first seconds after start: counters grew at the same rates then.
    out = meshtui("stat", "deploy/web", "-n", "emojivoto", "--prometheus", prom.url,
                  "--since", "-12s", "--until", "-2s", "-o", "json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["rps"] == pytest.approx(20, rel=0.15)
    old = meshtui("stat", "deploy", "-n", "emojivoto", "--prometheus", prom.url,
                  "--since", "-8h", "-o", "json")
    assert old.returncode == 2 and "keeps 6h" in old.stderr and len(
        old.stderr.strip().splitlines()) == 1


def test_prometheus_with_no_proxies_is_named(tmp_path: Path) -> None:
    empty = Prometheus(tmp_path, {})
    try:
        out = meshtui("stat", "deploy", "--prometheus", empty.url, "-o", "json")
    finally:
        empty.close()
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"meshtui: Prometheus at {empty.url} scrapes no proxies "
        '(no up{job="linkerd-proxy"} series): is it the mesh\'s?']
