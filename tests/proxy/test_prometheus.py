"""/metrics read back as Prometheus reads it: names, labels, buckets, and a real scrape."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshtui.model.histogram import bucket_index
from meshtui.model.inventory import Workload
from meshtui.proxy.admin import _LINKERD_BUCKET, LATENCY_BOUNDS_MS, metrics_text, start_admin
from meshtui.proxy.tap_hub import TapHub
from meshtui.proxy.telemetry import Direction, Identity, Telemetry

IDENT = Identity("emojivoto", "web", "web-0")
PEERS = {("10.0.0.7", 8080): Workload("emojivoto", "emoji", "emoji-0")}


class FakeClock:
    t = 10.0

    def __call__(self) -> float:
        return self.t


def traffic() -> Telemetry:
    clock = FakeClock()
    tel = Telemetry(IDENT, lambda ip, port: PEERS.get((ip, port)), clock,
                    hub=TapHub(clock, queue_capacity=3))
    for ms, status in ((0.5, 200), (3, 200), (7, 200), (15, 500), (60_000, 200)):
        obs = tel.request(Direction.OUTBOUND, ("10.0.0.5", 1), ("10.0.0.7", 8080), 1, "GET",
                          "http", "emoji-svc:8080", "/", [])
        clock.t += ms / 1000
        obs.response_start(status, [])
        obs.response_end(10)
    # Two addresses nobody can name, one authority: one label set for Prometheus.
    for dst in (("10.9.9.1", 80), ("10.9.9.2", 80)):
        obs = tel.request(Direction.OUTBOUND, ("10.0.0.5", 1), dst, 2, "GET", "http",
                          "ext:80", "/", [])
        obs.response_start(200, [])
        obs.response_end(1)
    obs = tel.request(Direction.INBOUND, ("10.0.0.8", 3), ("127.0.0.1", 8080), 3, "GET",
                      "http", "web-svc:80", "/", [])
    obs.reset()
    conn = tel.tcp_open(Direction.INBOUND, ("10.0.0.8", 3), ("127.0.0.1", 8080))
    conn.read(120)
    conn.write(4500)
    tel.tcp_open(Direction.INBOUND, ("10.0.0.8", 4), ("127.0.0.1", 8080)).close()
    return tel


def samples(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def pick(rows: list[tuple[dict[str, str], float]], **want: str) -> list[float]:
    return [v for labels, v in rows if all(labels.get(k) == x for k, x in want.items())]


def test_request_and_response_totals_with_linkerds_labels() -> None:
    s = samples(metrics_text(traffic()))
    (labels, value), = [r for r in s["request_total"] if r[0]["authority"] == "emoji-svc:8080"]
    assert value == 5
    assert labels == {
        "direction": "outbound", "authority": "emoji-svc:8080", "namespace": "emojivoto",
        "deployment": "web", "pod": "web-0", "dst_namespace": "emojivoto",
        "dst_deployment": "emoji", "dst_pod": "emoji-0", "tls": "no_identity",
    }
    resp = s["response_total"]
    assert pick(resp, authority="emoji-svc:8080", classification="success",
                status_code="200") == [4]
    assert pick(resp, authority="emoji-svc:8080", classification="failure",
                status_code="500") == [1]
    # Inbound: the destination is this pod; a reset with no response is status 0.
    assert pick(resp, direction="inbound", classification="failure", status_code="0",
                dst_deployment="web") == [1]
    # Two unnamed addresses share a label set: summed into one series, not repeated.
    assert pick(s["request_total"], authority="ext:80") == [2]


def test_latency_buckets_use_linkerds_bounds() -> None:
    s = samples(metrics_text(traffic()))
    buckets = pick(s["response_latency_ms_bucket"], authority="emoji-svc:8080",
                   status_code="200")
    les = [labels["le"] for labels, _ in s["response_latency_ms_bucket"]
           if labels["authority"] == "emoji-svc:8080" and labels["status_code"] == "200"]
    assert [float(x) for x in les] == [*map(float, LATENCY_BOUNDS_MS), float("inf")]
    by_le = dict(zip((float(x) for x in les), buckets, strict=True))
    assert (by_le[1], by_le[2], by_le[3], by_le[5], by_le[10], by_le[50000]) == (1, 1, 2, 2, 3, 3)
    assert by_le[float("inf")] == 4
    (count,) = pick(s["response_latency_ms_count"], authority="emoji-svc:8080",
                    status_code="200")
    (total,) = pick(s["response_latency_ms_sum"], authority="emoji-svc:8080",
                    status_code="200")
    assert count == 4
    assert total == pytest.approx(0.5 + 3 + 7 + 60_000, rel=1e-6)
    assert pick(s["response_latency_ms_count"], status_code="500") == [1]


def test_every_value_lands_in_the_right_linkerd_bucket_within_one_log_bucket() -> None:
    bounds = [*LATENCY_BOUNDS_MS, float("inf")]
    v_ms = 0.05
    while v_ms < 100_000:
        k = _LINKERD_BUCKET[bucket_index(v_ms * 1000)]
        # Never missed by a bound at or above it ...
        assert k == 0 or bounds[k - 1] < v_ms, v_ms
        # ... and counted early only when within 2 % of the bound.
        assert v_ms <= bounds[k] * 1.02, v_ms
        v_ms *= 1.003
    for b in LATENCY_BOUNDS_MS:  # a bound's own value is counted at that bound
        assert bounds[_LINKERD_BUCKET[bucket_index(b * 1000)]] == b


def test_tcp_metrics() -> None:
    s = samples(metrics_text(traffic()))
    assert pick(s["tcp_open_total"], direction="inbound", dst_pod="web-0") == [2]
    assert pick(s["tcp_close_total"], direction="inbound") == [1]
    assert pick(s["tcp_open_connections"], direction="inbound") == [1]
    assert pick(s["tcp_read_bytes_total"], direction="inbound") == [120]
    assert pick(s["tcp_write_bytes_total"], direction="inbound") == [4500]
    assert "authority" not in s["tcp_open_total"][0][0]


def test_the_recorders_own_losses_are_exposed() -> None:
    tel = traffic()
    tel.hub.subscribe()  # room for one request's three events
    for _ in range(4):
        tel.request(Direction.OUTBOUND, ("a", 1), ("10.0.0.7", 8080), 9, "GET", "http",
                    "x", "/", []).reset()
    s = samples(metrics_text(tel))
    assert s["meshtui_tap_dropped_events_total"][0][1] == 6  # three requests, two events each
    assert s["meshtui_tap_subscribers"][0][1] == 1
    assert pick(s["meshtui_series_overflow_total"], kind="request") == [0]


@pytest.mark.slow
async def test_a_real_prometheus_scrapes_the_admin_port(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package 'prometheus'; "
                    "scripts/install-tools.sh installs it)")
    tel = traffic()
    admin = await start_admin(tel, "127.0.0.1", 0, lambda: True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        web_port = s.getsockname()[1]
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: meshtui-proxy\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{admin.port}']}}]\n"
    )
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )

    def query(q: str) -> list[dict[str, object]]:
        url = f"http://127.0.0.1:{web_port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.load(r)["data"]["result"]  # type: ignore[no-any-return]

    try:
        result: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 12
        while loop.time() < deadline and proc.poll() is None:
            try:
                # The admin server runs on this loop: query from a thread.
                result = await asyncio.to_thread(query, 'request_total{authority="emoji-svc:8080"}')
            except OSError:
                result = []
            if result:
                break
            await asyncio.sleep(0.3)
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"prometheus exited: {err[-500:]}")
        assert result, "prometheus never scraped request_total"
        (series,) = result
        metric = series["metric"]
        assert isinstance(metric, dict)
        assert metric["dst_deployment"] == "emoji" and metric["job"] == "meshtui-proxy"
        assert series["value"][1] == "5"  # type: ignore[index]
        # Prometheus reads our histogram as a histogram.
        q = await asyncio.to_thread(
            query, 'histogram_quantile(0.5, sum by (le) (response_latency_ms_bucket'
                   '{authority="emoji-svc:8080",status_code="200"}))')
        assert q and 2 < float(q[0]["value"][1]) <= 10  # type: ignore[index]
        up = await asyncio.to_thread(query, "up")
        assert up and up[0]["value"][1] == "1"  # type: ignore[index]
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        admin.close()
