"""The demo's Prometheus: a real server scraping the real proxies through its own proxy.

Its scrape interval is Linkerd viz's 10 s, so the first figures take up to two
scrapes: every wait here is for what the check needs, within a bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from demokit import MESHTUI, PROMETHEUS, _free_port, api, by_label, until

from meshtui.demo import prometheus as prom
from meshtui.model.inventory import Address, Inventory, Pod

pytestmark = pytest.mark.slow
needs_prometheus = pytest.mark.skipif(prom.find_binary() is None,
                                      reason=f"needs the prometheus program ({prom.HOW_TO_GET})")


def _meshed(state: Path) -> dict[str, dict[str, str]]:
    pods = json.loads((state / "inventory.json").read_text())["pods"]
    return {p["name"]: p for p in pods if "admin" in p}


@needs_prometheus
def test_every_meshed_pods_proxy_is_a_target_with_linkerds_labels(demo) -> None:
    _server, _proc, _started, state = demo
    url, want = PROMETHEUS["url"], _meshed(state)
    assert any(p["deployment"] == "prometheus" and p["namespace"] == "meshtui"
               for p in want.values())

    def targets() -> dict[str, Any]:
        return {t["labels"].get("pod"): t
                for t in api(url, "/api/v1/targets", state="active")["activeTargets"]}

    got = until(targets, lambda t: all(t.get(n, {}).get("health") == "up" for n in want), 30)
    assert set(got) == set(want)  # the pod without a proxy is no target
    for name, pod in want.items():
        t = got[name]
        assert t["scrapeUrl"] == f"http://{pod['admin']}/metrics"
        assert {k: t["labels"][k] for k in ("namespace", "deployment", "pod", "job",
                                            "control_plane_ns")} == {
            "namespace": pod["namespace"], "deployment": pod["deployment"], "pod": name,
            "job": "linkerd-proxy", "control_plane_ns": "meshtui"}


@needs_prometheus
def test_linkerds_queries_answer_per_deployment(demo) -> None:
    url = PROMETHEUS["url"]
    query = ('sum(increase(response_total{direction="inbound",namespace="emojivoto"}[1m])) '
             'by (deployment)')
    # vote-bot only sends: no inbound responses.
    rows = until(lambda: by_label(url, query, "deployment"),
                 lambda r: set(r) == {"web", "emoji", "voting"}, 40)
    assert all(v > 0 for v in rows.values()), rows
    # Series carry the target's namespace, deployment and pod once, not the
    # proxy's own copies as well.
    series = api(url, "/api/v1/series", **{"match[]": 'request_total{namespace="emojivoto"}'})
    assert series and not any(k.startswith("exported_") for s in series for k in s)


@needs_prometheus
def test_prometheus_scrapes_go_out_through_its_own_proxy(demo) -> None:
    _server, _proc, _started, state = demo
    url = PROMETHEUS["url"]
    scraped = {p["deployment"] for p in _meshed(state).values()}
    query = ('sum(increase(request_total{namespace="meshtui",deployment="prometheus",'
             'direction="outbound"}[1m])) by (dst_deployment)')
    # Counted by the Prometheus pod's proxy, towards every pod it scrapes, and
    # growing from one scrape to the next.
    rows = until(lambda: by_label(url, query, "dst_deployment"),
                 lambda r: set(r) == scraped and all(v > 0 for v in r.values()), 40)
    assert set(rows) == scraped
    paths = by_label(url, 'sum(response_total{namespace="meshtui",deployment="prometheus",'
                          'direction="outbound"}) by (classification)', "classification")
    assert set(paths) == {"success"}, paths


def _inventory(*pods: tuple[str, int]) -> Inventory:
    return Inventory(tuple(
        Pod(name=name, namespace="emojivoto", deployment=name.split("-")[0],
            address=Address("127.0.0.1", port), proxy=Address("127.0.0.1", port),
            admin=Address("127.0.0.1", port)) for name, port in pods))


@needs_prometheus
def test_targets_follow_the_inventory_as_pods_come_and_go(tmp_path: Path) -> None:
    """A server of its own (no proxy in front): the targets file, rewritten by
    the demo's sync when the inventory file changes, is what Prometheus scrapes."""
    inv_path = tmp_path / "inventory.json"
    # Ports nobody listens on: targets are listed whether or not they answer.
    first = _inventory(("web-a", _free_port()), ("emoji-a", _free_port()))
    inv_path.write_text(json.dumps(first.to_data()))
    listen = f"127.0.0.1:{_free_port()}"
    url = f"http://{listen}"
    argv = prom.prepare(tmp_path, first, prom.find_binary() or "", listen, None)
    sync = prom.TargetsSync(inv_path, prom.targets_path(tmp_path))
    assert not sync.check()  # nothing changed since the first targets were written
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def pods() -> set[str]:
            return {t["labels"]["pod"]
                    for t in api(url, "/api/v1/targets", state="active")["activeTargets"]}

        until(pods, lambda p: p == {"web-a", "emoji-a"}, 30)
        second = _inventory(("web-a", _free_port()), ("voting-b", _free_port()))
        inv_path.write_text(json.dumps(second.to_data()))
        assert sync.check()
        until(pods, lambda p: p == {"web-a", "voting-b"}, 30)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert not list(prom.targets_path(tmp_path).parent.glob(".*.tmp"))



def test_without_the_program_the_mesh_runs_and_says_how_to_get_it() -> None:
    # A PATH with Python alone: no prometheus on it, whether or not this machine has one.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    server = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([*MESHTUI, "--server", server, "demo", "--headless"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        while not lines or "controller at" not in lines[-1]:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert line, f"demo exited: {lines}"
            lines.append(line)
        state = Path(lines[-1].split("logs in ", 1)[1].split(";", 1)[0])
        pods = json.loads((state / "inventory.json").read_text())["pods"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    told = [ln for ln in lines if "prometheus" in ln.lower()]
    assert len(told) == 1 and "apt-get install prometheus" in told[0], lines
    assert "prometheus" not in {p["deployment"] for p in pods}
    assert proc.returncode == 0


@needs_prometheus
def test_the_controller_and_prometheus_sources_agree_over_one_window(demo) -> None:
    """The same demo, the same minute, read both ways: the same rows, RPS within 5 %,
    success within a point."""
    import asyncio

    from meshtui.client.controller_source import ControllerSource
    from meshtui.client.prometheus_source import PrometheusSource
    from meshtui.client.queries import StatQuery

    server, _proc, _started, state = demo
    url = PROMETHEUS["url"]
    # viz's increase() extrapolates each pod's series over the time between the
    # window's edges and its first and last scrape (up to 2 s with this demo's
    # Prometheus). vote-bot sends a 5 s burst every 30 s; extrapolated across a burst
    # a minute's count is off by a share of it. So the minute compared has its edges
    # in steady traffic: it starts 15-20 s into vote-bot's 30 s cycle, and so ends
    # 15-20 s into a later one.
    bot = json.loads((state / "vote-bot.json").read_text())
    cycle = 30.0
    # Scrapes 90 s back, every 2 s: each pod sampled near the earliest start possible.
    scrapes = 'min(count_over_time(up{job="linkerd-proxy", namespace="emojivoto"}[100s]))'
    until(lambda: by_label(url, scrapes, ""), lambda v: v.get("", 0) >= 46, 160)
    last = by_label(url, 'max(timestamp(up{job="linkerd-proxy", namespace="emojivoto"}))',
                    "")[""]
    start = last - 60 - ((last - 60 - bot["started"] - 17.5) % cycle)
    query = StatQuery("deployment", "emojivoto", window_s=60, until=start + 60)

    async def read(source):  # type: ignore[no-untyped-def]
        try:
            return {r.name: r for r in (await source.stats(query)).rows}
        finally:
            await source.close()

    controller = asyncio.run(read(ControllerSource(server)))
    prometheus = asyncio.run(read(PrometheusSource(url)))
    assert sorted(controller) == sorted(prometheus) == ["emoji", "vote-bot", "voting", "web"]
    for name in ("emoji", "voting", "web"):
        c, p = controller[name], prometheus[name]
        assert c.rps and p.rps == pytest.approx(c.rps, rel=0.05), name
        assert p.success == pytest.approx(c.success, abs=0.01), name
        assert (p.meshed, p.total) == (c.meshed, c.total), name
        # viz's byte rates select the proxies' `peer` label.
        assert p.read_bytes_rate and p.write_bytes_rate, name
    assert controller["vote-bot"].rps is None and prometheus["vote-bot"].rps is None
