"""The real demo mesh: real processes, real proxies, a real controller, read over gRPC."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import pytest
from demokit import MESHTUI, STARTUP

pytestmark = pytest.mark.slow


async def _summary(server: str, kind: str, namespace: str, window_s: int = 60):
    from meshtui.client.controller import ControllerClient
    from meshtui.client.convert import selector, stat_row
    from meshtui.v1 import controller_pb2

    async with ControllerClient(server) as c:
        resp = await c.summary(controller_pb2.StatRequest(
            selector=selector(kind, namespace, None), window_s=window_s))
    return {r.name: r for r in map(stat_row, resp.rows)}


def _wait_for(server: str, kind: str, ns: str, ok, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    rows = {}
    while time.monotonic() < deadline:
        rows = asyncio.run(_summary(server, kind, ns))
        if ok(rows):
            return rows
        time.sleep(0.5)
    pytest.fail(f"condition not met in {timeout}s; last rows: {rows}")


def test_every_namespace_and_deployment_appears_with_stats_soon(demo) -> None:
    server, _proc, _started, _state = demo
    assert STARTUP["first_stats_s"] < 30
    rows = _wait_for(server, "deployment", "emojivoto",
                     lambda r: all(r.get(d) and r[d].rps for d in ("web", "emoji", "voting")))
    assert set(rows) == {"web", "emoji", "voting", "vote-bot"}
    namespaces = asyncio.run(_summary(server, "namespace", ""))
    assert set(namespaces) >= {"emojivoto", "kube-system", "meshtui", "default"}
    assert namespaces["default"].meshed == 0 and namespaces["default"].total == 1
    assert namespaces["emojivoto"].meshed == namespaces["emojivoto"].total == 4


def test_voting_fails_sometimes_and_percentiles_are_ordered(demo) -> None:
    server, _proc, _, _state = demo
    rows = _wait_for(server, "deployment", "emojivoto",
                     lambda r: r.get("voting") and r["voting"].success is not None
                     and r["voting"].success < 1.0)
    voting = rows["voting"]
    assert 0.5 < voting.success < 1.0  # one choice of twenty always fails
    for r in (rows["web"], rows["emoji"], voting):
        assert r.p50_ms is not None and r.p95_ms is not None and r.p99_ms is not None
        assert 0 < r.p50_ms <= r.p95_ms <= r.p99_ms < 5000


def test_rates_match_what_the_load_generator_sent(demo) -> None:
    server, _proc, _, state = demo
    # web's inbound traffic is vote-bot's requests: compare the bot's own count.
    report = state / "vote-bot.json"
    deadline = time.monotonic() + 10
    while not report.exists():  # written each second once the bot runs
        assert time.monotonic() < deadline, "vote-bot wrote no report"
        time.sleep(0.2)
    first = json.loads(report.read_text())
    time.sleep(10)
    second = json.loads(report.read_text())
    bot_rps = (second["total"] - first["total"]) / (second["at"] - first["at"])
    web = asyncio.run(_summary(server, "deployment", "emojivoto", window_s=10))["web"]
    assert web.rps is not None
    assert abs(web.rps - bot_rps) / bot_rps < 0.35, (web.rps, bot_rps)


def test_kube_dns_shows_http_and_tcp(demo) -> None:
    server, _proc, _, _state = demo
    rows = _wait_for(server, "deployment", "kube-system",
                     lambda r: r.get("kube-dns") and r["kube-dns"].rps
                     and r["kube-dns"].read_bytes_rate)
    dns = rows["kube-dns"]
    assert dns.success == 1.0
    assert dns.read_bytes_rate and dns.read_bytes_rate > 0


def _cli(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHTUI, "--server", server, *args], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_stat_prints_json_and_tables_for_scripts(demo) -> None:
    server, _proc, _, _state = demo
    _wait_for(server, "deployment", "emojivoto", lambda r: r.get("web") and r["web"].rps)
    out = _cli(server, "stat", "deploy", "-n", "emojivoto", "-o", "json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"web", "emoji", "voting", "vote-bot"}
    assert rows["web"]["kind"] == "deployment" and rows["web"]["meshed"] == "1/1"
    assert 0 < rows["voting"]["success"] < 1
    assert rows["vote-bot"]["rps"] is None  # it only sends
    table = _cli(server, "stat", "ns")  # piped: prints once
    assert table.returncode == 0
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95",
                              "LATENCY_P99", "TCP_CONN"]
    by_name = {line.split()[0]: line.split() for line in lines}
    assert by_name["default"][1] == "0/1"
    assert by_name["emojivoto"][2].endswith("%") and by_name["emojivoto"][3].endswith("rps")


def test_stat_errors_are_one_line(demo) -> None:
    server, _proc, _, _state = demo
    bad = _cli(server, "stat", "foo/bar")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    missing = _cli(server, "stat", "deploy/nope", "-n", "emojivoto")
    assert missing.returncode == 2 and "not found" in missing.stderr
    nobody = _cli("127.0.0.1:1", "stat", "ns")
    assert nobody.returncode == 1
    assert "127.0.0.1:1" in nobody.stderr and "meshtui demo" in nobody.stderr


def test_tap_streams_json_with_failures_from_voting(demo) -> None:
    server, _proc, _, _state = demo
    out = _cli(server, "tap", "deploy/voting", "-n", "emojivoto", "-o", "json", "--limit", "150")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(events) == 150
    assert all(e["destination"]["metadata"].get("deployment") == "voting" for e in events)
    assert all(e["proxyDirection"] == "INBOUND" for e in events)
    statuses = {e["responseInitEvent"]["httpStatus"] for e in events if "responseInitEvent" in e}
    assert 200 in statuses


def test_top_samples_routes(demo) -> None:
    server, _proc, _, _state = demo
    out = _cli(server, "top", "deploy/web", "-n", "emojivoto", "-o", "json", "--sample", "3")
    assert out.returncode == 0, out.stderr
    routes = json.loads(out.stdout)
    paths = {r["path"] for r in routes}
    assert "/api/list" in paths
    assert all(r["count"] > 0 and 0 <= r["success"] <= 1 for r in routes)
    counts = [r["count"] for r in routes]
    assert counts == sorted(counts, reverse=True)


def test_check_reports_a_healthy_mesh_and_a_missing_controller(demo) -> None:
    server, _proc, _, state = demo
    ok = _cli(server, "check", "--wait", "10")
    assert ok.returncode == 0, ok.stdout
    # Six meshed pods, and Prometheus's where the program is installed.
    pods = json.loads((state / "inventory.json").read_text())["pods"]
    meshed = sum("proxy" in p for p in pods)
    assert meshed == 6 + (shutil.which("prometheus") is not None)
    assert "√ every proxy is reachable" in ok.stdout and f"{meshed} meshed" in ok.stdout
    # As the proxies themselves report their certificates in their scrapes.
    assert "√ every meshed proxy holds a current certificate for its identity" in ok.stdout
    down = _cli("127.0.0.1:1", "check")
    assert down.returncode == 1
    assert "× controller is reachable at 127.0.0.1:1" in down.stdout


def test_meshed_pods_talk_mutual_tls_and_the_unmeshed_cli_plain(demo) -> None:
    server, _proc, _, _state = demo
    # voting is called only by web, through web's proxy: mutual TLS both ways.
    out = _cli(server, "tap", "deploy/voting", "-n", "emojivoto", "--limit", "20")
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stdout.splitlines() if x.startswith("req ")]
    assert lines and all(" tls=true " in x for x in lines), out.stdout
    # The controller is called by this test's CLI, which has no proxy: plain.
    tap = subprocess.Popen([*MESHTUI, "--server", server, "tap", "deploy/controller", "-n",
                            "meshtui", "--path", "/meshtui.v1.Stats/", "-o", "json",
                            "--limit", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while tap.poll() is None and time.monotonic() < deadline:
            _cli(server, "stat", "ns")
        stdout, stderr = tap.communicate(timeout=10)
    finally:
        if tap.poll() is None:
            tap.kill()
    events = [json.loads(x) for x in stdout.splitlines()]
    inbound = [e for e in events if e["proxyDirection"] == "INBOUND"]
    assert inbound, stderr or stdout
    assert all(e["tls"] is False for e in inbound), stdout


def _series(admin: str) -> list[tuple[dict[str, str], float]]:
    """A proxy's response_total series, straight from its /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    return [(dict(sample.labels), sample.value)
            for fam in text_string_to_metric_families(text)
            for sample in fam.samples if sample.name == "response_total"]


def test_no_call_fails_from_the_start_but_the_apps_own_fault(demo) -> None:
    """Every pod starts after the proxies and peers it calls are ready, as in a
    cluster: from the first request, the only failures are the doughnut's vote
    (UNKNOWN from voting, web's 500 to the bot). A web that called voting before
    voting's proxy listened had seen connections refused."""
    _server, _proc, _, state = demo
    inventory = json.loads((state / "inventory.json").read_text())
    admins = {p["deployment"]: p["admin"] for p in inventory["pods"] if p.get("admin")}
    # Counted since each proxy started: wait until the bot has voted a while.
    series = _series(admins["web"])
    deadline = time.monotonic() + 30
    while sum(v for lab, v in series if lab["direction"] == "inbound") < 50:
        assert time.monotonic() < deadline, series
        time.sleep(0.5)
        series = _series(admins["web"])
    web_failures = [(lab, v) for lab, v in series
                    if lab["direction"] == "outbound" and lab["classification"] == "failure"]
    assert all(lab.get("grpc_status") == "2" and lab["dst_deployment"] == "voting"
               for lab, _ in web_failures), web_failures
    bot_failures = [(lab, v) for lab, v in _series(admins["vote-bot"])
                    if lab["direction"] == "outbound" and lab["classification"] == "failure"]
    assert all(lab["status_code"] == "500" for lab, _ in bot_failures), bot_failures
