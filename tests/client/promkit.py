"""A real Prometheus server for the tests, and an exporter whose figures are known.

The exporter serves Linkerd-shaped series (the proxies' metric names) whose
counters grow at fixed rates from its start, so a test knows what Prometheus
must answer: requests per second, success, which latency bucket, open
connections. Prometheus itself is Debian's, started on a free port with a
file_sd target list labelled as Linkerd's relabelling labels proxy targets.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian's prometheus is not installed (make tools installs it)")

#: The stat window the tests ask for: the shared Prometheus holds a whole one first.
WINDOW = 10

BOUNDS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000)


@dataclass
class Route:
    """One inbound series of a pod: requests at ``ok_rps`` and ``fail_rps``, all
    taking ``latency_ms``; the pod holds ``conns`` connections open."""

    ok_rps: float
    fail_rps: float = 0.0
    latency_ms: float = 4.0
    conns: int = 3
    dst: dict[str, str] = field(default_factory=dict)  # outbound: the destination's labels

    def lines(self, elapsed: float) -> list[str]:
        direction = "outbound" if self.dst else "inbound"
        base = {"direction": direction, **self.dst}
        ok, failed = self.ok_rps * elapsed, self.fail_rps * elapsed
        out = []
        for cls, n, code in (("success", ok, "200"), ("failure", failed, "500")):
            series = _labels({**base, "classification": cls, "status_code": code})
            out.append(f"response_total{series} {n:.3f}")
        total = ok + failed
        for le in BOUNDS:
            out.append(f"response_latency_ms_bucket{_labels({**base, 'le': str(le)})} "
                       f"{total if self.latency_ms <= le else 0:.3f}")
        out.append(f"response_latency_ms_bucket{_labels({**base, 'le': '+Inf'})} {total:.3f}")
        out.append(f"response_latency_ms_count{_labels(base)} {total:.3f}")
        out.append(f"response_latency_ms_sum{_labels(base)} {total * self.latency_ms:.3f}")
        tcp = {**base, "peer": "dst" if self.dst else "src"}
        out.append(f"tcp_open_connections{_labels(tcp)} {self.conns}")
        out.append(f"tcp_read_bytes_total{_labels(tcp)} {1000 * elapsed:.0f}")
        out.append(f"tcp_write_bytes_total{_labels(tcp)} {2000 * elapsed:.0f}")
        return out


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


class Exporter:
    """One pod's /metrics on a loopback port, its counters growing from start."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self.started = time.time()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                elapsed = time.time() - exporter.started
                body = "\n".join(line for r in exporter.routes
                                 for line in r.lines(elapsed)).encode() + b"\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """Debian's prometheus scraping ``targets`` (address → target labels, or file_sd's
    target groups as they are) every ``scrape_s`` seconds, one by default."""

    def __init__(self, workdir: Path,
                 targets: dict[str, dict[str, str]] | list[dict[str, object]],
                 scrape_s: int = 1) -> None:
        assert PROMETHEUS is not None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        sd = workdir / "targets.json"
        groups = targets if isinstance(targets, list) else [
            {"targets": [addr], "labels": labels} for addr, labels in targets.items()]
        sd.write_text(json.dumps(groups))
        config = workdir / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {scrape_s}s\n  evaluation_interval: {scrape_s}s\n"
            "scrape_configs:\n- job_name: linkerd-proxy\n  honor_labels: false\n"
            f"  file_sd_configs:\n  - files: ['{sd}']\n    refresh_interval: 1s\n")
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=6h"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.wait(lambda: self.get("/-/ready") is not None, 20, "ready")

    def get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as r:
                return bytes(r.read())
        except OSError:
            return None

    def query(self, promql: str) -> list[dict[str, object]]:
        from urllib.parse import quote

        body = self.get("/api/v1/query?query=" + quote(promql))
        return json.loads(body)["data"]["result"] if body else []

    def wait(self, ok: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.proc.returncode}")
            if ok():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise AssertionError(f"prometheus never got {what}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
