"""The Prometheus source over a real Prometheus holding 500 proxies' series (targets: a
stat refresh ≤ 1 s; one chart over 15 minutes and one over 6 hours ≤ 1 s each).

Debian's prometheus scrapes 500 proxies every 10 s, as Linkerd viz's does: one
exporter process serves each pod's /metrics under its own path (a per-target
``__metrics_path__`` in the file_sd list, labelled namespace/deployment/pod as
Linkerd's relabelling labels proxy targets), with the series and labels
meshtui's proxy exports: request and response counters, latency histograms on
Linkerd's bucket bounds, inbound and outbound, TCP gauges and counters. Before
Prometheus starts, promtool writes six hours of history of one deployment's pods
(the series the charts read, at the scrape interval) into its data directory,
ending before the first scrape, so that the live series carry on from it.

Once every target holds a whole stat window, the script times PrometheusSource
itself, one call at a time, round after round: ``stats`` for one namespace's
pods, for every pod, for one namespace's deployments; ``history`` of the
backfilled deployment as the dashboard asks it, over 15 minutes (10 s steps,
ending where the history ends: the live scrapes begin a little after it) and
over 6 hours (240 s steps, ending now). Every answer is checked against the rates the
exporter serves (rows, requests per second, success, MESHED, chart points).
A target is met when every call of its kind took at most 1 s.

Run: .venv/bin/python benchmarks/prometheus_source.py [--rounds 20]
         [--namespaces 2] [--deployments 10] [--pods 50] [--backfill-step 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "client"))

from promkit import PROMETHEUS, Prometheus  # noqa: E402

from meshtui.client.prometheus_source import PrometheusSource  # noqa: E402
from meshtui.client.promql import (  # noqa: E402
    LATENCY,
    PROXY_JOB,
    QUANTILE_NAMES,
    history_queries,
    stat_queries,
    viz_quantile,
)
from meshtui.client.queries import StatQuery  # noqa: E402
from meshtui.errors import RuntimeFailure  # noqa: E402
from meshtui.proxy.admin import _LE  # noqa: E402

SCRAPE_S = 10  # Linkerd viz's scrape interval
WINDOW_S = 60  # stat's default window
TARGET_S = 1.0
HISTORY_S = 6 * 3600
# History reaches this far before the first scrape: the 6-hour chart asked for
# during the run still starts inside it (with its rate window before that).
BACKFILL_S = HISTORY_S + 15 * 60
# The series of the backfilled pods that the charts read.
BACKFILLED = ("response_total", "response_latency_ms_bucket")


# --- the mesh: who serves what -------------------------------------------------------


@dataclass
class Series:
    """One sample line: its value is ``rate`` per second since the origin plus
    ``offset`` (a counter), or ``offset`` alone when ``rate`` is 0 (a gauge)."""

    name: str
    labels: dict[str, str]
    rate: float = 0.0
    offset: float = 0.0

    def value(self, elapsed: float) -> float:
        return self.rate * elapsed + self.offset


@dataclass
class Pod:
    index: int
    namespace: str
    deployment: str
    name: str
    ok_rps: float
    fail_rps: float
    median_ms: float
    conns: int
    calls: list[Pod] = field(default_factory=list)  # outbound: the pods it calls

    @property
    def path(self) -> str:
        return f"/metrics/{self.index}"

    @property
    def identity(self) -> dict[str, str]:
        return {"namespace": self.namespace, "deployment": self.deployment, "pod": self.name}


def build_mesh(a: argparse.Namespace) -> list[Pod]:
    """``deployments`` deployments spread over ``namespaces`` namespaces, ``pods``
    pods each; each pod calls two pods of the next deployment. The first
    deployment (the backfilled one) answers every request; the others fail 2 %."""
    pods: list[Pod] = []
    by_dep: list[list[Pod]] = []
    for d in range(a.deployments):
        ns = f"bench-{d * a.namespaces // a.deployments}"
        dep = f"svc-{d:02d}"
        mine: list[Pod] = []
        for p in range(a.pods):
            ok = 1.0 + 0.5 * (p % 5)
            mine.append(Pod(len(pods) + len(mine), ns, dep, f"{dep}-{p:03d}",
                            ok_rps=ok, fail_rps=0.0 if d == 0 else 0.02 * ok,
                            median_ms=(5, 10, 20, 30)[d % 4], conns=2 + p % 3))
        pods += mine
        by_dep.append(mine)
    for d, mine in enumerate(by_dep):
        peers = by_dep[(d + 1) % len(by_dep)]
        for p, pod in enumerate(mine):
            pod.calls = [peers[p % len(peers)], peers[(p + 1) % len(peers)]]
    return pods


def cumulative(median_ms: float, le: str) -> float:
    """The share of requests at most ``le`` ms for a pod whose median is ``median_ms``."""
    bound = math.inf if le == "+Inf" else float(le)
    for at, share in ((30, 1.0), (10, 0.99), (4, 0.95), (1, 0.5), (0.5, 0.1)):
        if bound >= at * median_ms:
            return share
    return 0.0


def http_series(pod: Pod, base: dict[str, str], ok: float, fail: float, median_ms: float
                ) -> list[Series]:
    """A route's request, response and latency series, as meshtui's proxy names them
    (a status code's series exist once it has answered)."""
    out = [Series("request_total", base, ok + fail)]
    codes = [(c, code, r) for c, code, r in (("success", "200", ok), ("failure", "500", fail))
             if r > 0]
    out += [Series("response_total", {**base, "classification": c, "status_code": code}, r)
            for c, code, r in codes]
    for _, code, r in codes:
        labels = {**base, "status_code": code}
        out += [Series("response_latency_ms_bucket", {**labels, "le": le},
                       r * cumulative(median_ms, le)) for le in _LE]
        out.append(Series("response_latency_ms_sum", labels, r * median_ms * 1.4))
        out.append(Series("response_latency_ms_count", labels, r))
    return out


def tcp_series(base: dict[str, str], rps: float, conns: int) -> list[Series]:
    return [Series("tcp_open_connections", base, 0.0, conns),
            Series("tcp_open_total", base, 0.05, conns),
            Series("tcp_close_total", base, 0.05),
            Series("tcp_read_bytes_total", base, 800 * rps),
            Series("tcp_write_bytes_total", base, 2400 * rps)]


def pod_series(pod: Pod, origin: float) -> list[Series]:
    """Everything one proxy exports, in meshtui's label order."""
    own = pod.identity
    inbound = {"direction": "inbound",
               "authority": f"{pod.deployment}.{pod.namespace}.svc.cluster.local:8080", **own}
    out = http_series(pod, inbound, pod.ok_rps, pod.fail_rps, pod.median_ms)
    tcp = tcp_series({"direction": "inbound", **own}, pod.ok_rps + pod.fail_rps, pod.conns)
    for peer in pod.calls:
        dst = {"dst_namespace": peer.namespace, "dst_deployment": peer.deployment,
               "dst_pod": peer.name}
        outbound = {"direction": "outbound",
                    "authority": f"{peer.deployment}.{peer.namespace}.svc.cluster.local:8080",
                    **own, **dst}
        out += http_series(pod, outbound, 2.0, 0.0, peer.median_ms + 1)
        tcp += tcp_series({"direction": "outbound", **own, **dst}, 2.0, 1)
    out += tcp
    out += [Series("process_start_time_seconds", {}, 0.0, origin),
            Series("meshtui_tap_dropped_events_total", {}),
            Series("meshtui_tap_subscribers", {}),
            Series("meshtui_series_overflow_total", {"kind": "request"}),
            Series("meshtui_series_overflow_total", {"kind": "tcp"})]
    return out


def label_text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""


# --- the exporter: 500 proxies' /metrics from one process ----------------------------


def serve(a: argparse.Namespace, origin: float, conn: Connection) -> None:
    """Serve every pod's /metrics under its path until terminated; send the port first."""
    bodies: dict[str, list[tuple[str, Series | None]]] = {}
    for pod in build_mesh(a):
        families: dict[str, list[Series]] = {}
        for s in pod_series(pod, origin):
            families.setdefault(family(s.name), []).append(s)
        lines: list[tuple[str, Series | None]] = []
        for name, members in families.items():
            lines.append((f"# TYPE {name} {kind(name)}\n", None))
            lines += [(s.name + label_text(s.labels), s) for s in members]
        bodies[pod.path] = lines

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            lines = bodies.get(self.path)
            if lines is None:
                self.send_error(404)
                return
            # Stamped with the moment the values were taken, so that a scrape answered
            # late on a busy machine still gives the rates served.
            now = time.time()
            elapsed, stamp = now - origin, round(now * 1000)
            body = "".join(text if s is None else f"{text} {s.value(elapsed):.3f} {stamp}\n"
                           for text, s in lines).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024  # 500 targets: no connection refused in a burst

    server = Server(("127.0.0.1", 0), Handler)
    conn.send(server.server_address[1])
    server.serve_forever()


GAUGES = ("tcp_open_connections", "process_start_time_seconds", "meshtui_tap_subscribers")
HISTOGRAMS = ("response_latency_ms",)


def family(name: str) -> str:
    """The metric family a sample belongs to, as ``# TYPE`` names it."""
    for h in HISTOGRAMS:
        if name.startswith(h + "_"):
            return h
    return name


def kind(family: str) -> str:
    if family in HISTOGRAMS:
        return "histogram"
    return "gauge" if family in GAUGES else "counter"


# --- Prometheus ------------------------------------------------------------------------


def backfill(a: argparse.Namespace, pods: list[Pod], instance: str, origin: float,
             end: float, data: Path, promtool: str) -> tuple[int, float]:
    """History of the first deployment's pods from ``end - BACKFILL_S`` to ``end``,
    labelled as the scrapes will label them; (samples written, seconds taken)."""
    t0 = time.monotonic()
    target = {"instance": instance, "job": PROXY_JOB}
    series = []
    for pod in pods:
        if pod.deployment != pods[0].deployment:
            continue
        for s in pod_series(pod, origin):
            if s.name in BACKFILLED and s.labels.get("direction") == "inbound":
                labels = {f"exported_{k}" if k in pod.identity else k: v
                          for k, v in s.labels.items()}
                labels = {**labels, **target, **pod.identity}
                series.append((s.name + label_text(labels) + " ", s))
    step = a.backfill_step
    first = int(end - BACKFILL_S) // step * step
    path = data.parent / "history.om"
    n = 0
    with path.open("w") as f:
        for t in range(first, int(end), step):
            elapsed = t - origin
            f.write("".join(f"{text}{s.value(elapsed):.3f} {t}\n" for text, s in series))
            n += len(series)
        f.write("# EOF\n")
    out = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                          str(path), str(data)], capture_output=True, text=True, timeout=600)
    path.unlink()
    if out.returncode != 0:
        raise SystemExit(f"promtool could not write the history: {out.stderr.strip()[:400]}")
    return n, time.monotonic() - t0


def cpu_s(pid: int) -> float:
    """User and system CPU of a process so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- checks: the answers, not only their speed -----------------------------------------


def near(got: float | None, want: float, rel: float = 0.05) -> bool:
    return got is not None and abs(got - want) <= rel * want


def check_rows(what: str, rows: Any, want: dict[tuple[str, str], tuple[float, float, int, int]]
               ) -> list[str]:
    """Rows against (rps, success, open connections, pods) per (namespace, name)."""
    faults = []
    got = {(r.namespace, r.name): r for r in rows}
    if set(got) != set(want):
        faults.append(f"{what}: {len(got)} rows, {len(set(got) & set(want))} of the "
                      f"{len(want)} expected")
    for key, (rps, success, conns, pods) in want.items():
        r = got.get(key)
        if r is None:
            continue
        quantiles = (r.p50_ms, r.p95_ms, r.p99_ms)
        if not (near(r.rps, rps) and r.success is not None and abs(r.success - success) < 0.005
                and r.tcp_conn == conns and r.meshed == r.total == pods
                and None not in quantiles and quantiles == tuple(sorted(quantiles))):
            faults.append(f"{what}: {key[1]}: rps {r.rps} (want {rps:.2f}), success "
                          f"{r.success} (want {success:.3f}), tcp {r.tcp_conn} (want {conns}),"
                          f" meshed {r.meshed}/{r.total} (want {pods}), latency {quantiles}")
    return faults


def check_chart(what: str, hist: dict[Any, Any], key: tuple[str, str, str], span_s: int,
                step_s: int, rps: float) -> list[str]:
    points = hist.get(key, [])
    if set(hist) != {key}:
        return [f"{what}: series for {sorted(hist)}, want only {key}"]
    good = [p for p in points if near(p.rps, rps, 0.1) and p.success == 1.0
            and p.p50_ms is not None and p.p99_ms is not None]
    if len(points) < span_s // step_s or len(good) < 0.95 * len(points):
        return [f"{what}: {len(points)} points (want {span_s // step_s + 1}), {len(good)} with "
                f"rps near {rps:.1f}, success 1 and latency"]
    return []


# --- the run ---------------------------------------------------------------------------


@dataclass
class Calls:
    label: str
    call: Callable[[], Awaitable[Any]]
    check: Callable[[Any], list[str]]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


async def measure(url: str, pods: list[Pod], history_end: float, a: argparse.Namespace
                  ) -> list[Calls]:
    src = PrometheusSource(url)
    ns = pods[0].namespace
    dep = pods[0].deployment
    by_pod = {(p.namespace, p.name): (p.ok_rps + p.fail_rps, p.ok_rps / (p.ok_rps + p.fail_rps),
                                      p.conns, 1) for p in pods}
    by_dep: dict[tuple[str, str], tuple[float, float, int, int]] = {}
    for p in pods:
        rps, _, conns, n = by_dep.get((p.namespace, p.deployment), (0.0, 0.0, 0, 0))
        by_dep[(p.namespace, p.deployment)] = (rps + p.ok_rps + p.fail_rps, 0.0,
                                               conns + p.conns, n + 1)
    oks = {(p.namespace, p.deployment): 0.0 for p in pods}
    for p in pods:
        oks[(p.namespace, p.deployment)] += p.ok_rps
    by_dep = {k: (rps, oks[k] / rps, c, n) for k, (rps, _, c, n) in by_dep.items()}
    in_ns = {k: v for k, v in by_pod.items() if k[0] == ns}
    deps_in_ns = {k: v for k, v in by_dep.items() if k[0] == ns}
    dep_rps = by_dep[(ns, dep)][0]
    key = ("deployment", ns, dep)
    calls = [
        Calls(f"stats pod -n {ns} ({len(in_ns)} pods)",
              lambda: src.stats(StatQuery("pod", ns)),
              lambda s: check_rows("pods of one namespace", s.rows, in_ns)),
        Calls(f"stats pod, every namespace ({len(by_pod)} pods)",
              lambda: src.stats(StatQuery("pod")),
              lambda s: check_rows("every pod", s.rows, by_pod)
              + ([] if s.proxies_total == s.proxies_reachable == len(pods)
                 else [f"proxies {s.proxies_reachable}/{s.proxies_total}"])),
        Calls(f"stats deployment -n {ns} ({len(deps_in_ns)} deployments)",
              lambda: src.stats(StatQuery("deployment", ns)),
              lambda s: check_rows("deployments", s.rows, deps_in_ns)),
        Calls(f"history deploy/{dep}, 15 min at 10 s (ending where the history ends)",
              lambda: src.history(StatQuery("deployment", ns, dep, until=history_end), 900,
                                  10),
              lambda h: check_chart("15-minute chart", h, key, 900, 10, dep_rps)),
        Calls(f"history deploy/{dep}, 6 h at 240 s (ending now)",
              lambda: src.history(StatQuery("deployment", ns, dep), HISTORY_S, 240),
              lambda h: check_chart("6-hour chart", h, key, HISTORY_S, 240, dep_rps)),
    ]
    try:
        for n in range(a.rounds + 1):  # the first round (not timed) learns the server
            for c in calls:
                c0, t0 = time.process_time(), time.perf_counter()
                try:
                    answer = await c.call()
                    faults = c.check(answer)
                except RuntimeFailure as e:  # past the deadline, say: counted, not fatal
                    faults = [str(e)]
                if n:
                    c.wall.append(time.perf_counter() - t0)
                    c.cpu.append(time.process_time() - c0)
                if faults and not c.faults:
                    c.faults = faults
                await asyncio.sleep(a.pause)
    finally:
        await src.close()
    return calls


def breakdown(prom: Prometheus, ns: str, dep: str) -> list[str]:
    """Where a call's time goes: Prometheus's own evaluation of each of its queries,
    asked one at a time (three times each, the median); and, for comparison, of viz's
    three histogram_quantile queries that the one ``latency`` query replaces."""
    now = time.time()
    stat, _ = stat_queries(StatQuery("pod"))
    chart, _ = history_queries(StatQuery("deployment", ns, dep), 240, SCRAPE_S)
    for queries in (stat, chart):
        queries.update({f"(viz's {name}, not asked)": viz_quantile(q, queries[LATENCY])
                        for name, q in QUANTILE_NAMES.items()})
    end = now - now % 240
    out = []
    for what, queries, params in (
            ("stats pod, every namespace", stat, f"&time={now:.3f}"),
            ("history over 6 h", chart, f"&start={end - HISTORY_S}&end={end}&step=240")):
        took = {}
        for name, q in queries.items():
            api = "query" if what.startswith("stats") else "query_range"
            runs = []
            for _ in range(3):
                body = prom.get(f"/api/v1/{api}?query={quote(q)}{params}&stats=all")
                timings = json.loads(body or "{}").get("data", {}).get("stats", {})
                runs.append(timings.get("timings", {}).get("execTotalTime", math.nan))
            took[name] = statistics.median(runs)
        asked = sum(t for n, t in took.items() if not n.startswith("("))
        out.append(f"  Prometheus evaluating the queries of {what} one at a time: "
                   + ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in took.items())
                   + f"; {asked * 1000:.0f} ms in all for those asked")
    return out


def ms(xs: list[float], f: Callable[[list[float]], float]) -> str:
    return f"{f(xs) * 1000:.0f}"


def run(a: argparse.Namespace, promtool: str, workdir: Path) -> int:
    pods = build_mesh(a)
    origin = time.time() - BACKFILL_S  # the counters grow from here, history included
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    exporter = ctx.Process(target=serve, args=(a, origin, child), daemon=True)
    exporter.start()
    prom = None
    try:
        if not parent.poll(30):
            raise SystemExit("the exporter did not start")
        instance = f"127.0.0.1:{parent.recv()}"
        data = workdir / "data"
        data.mkdir()
        history_end = time.time()
        samples, took = backfill(a, pods, instance, origin, history_end, data, promtool)
        print(f"history: {samples:,} samples of {a.pods} pods over "
              f"{BACKFILL_S / 3600:.2f} h at {a.backfill_step} s, written in {took:.0f} s")
        targets = [{"targets": [instance], "labels": {**p.identity, "__metrics_path__": p.path}}
                   for p in pods]
        prom = Prometheus(workdir, targets, SCRAPE_S)
        t0 = time.monotonic()
        # Every target scraped, each from its own path, and a whole stat window held.
        every = f'count(up{{job="{PROXY_JOB}"}} == 1) == {len(pods)}'
        prom.wait(lambda: bool(prom.query(every)), 60, "every target up")
        pairs = [p["metric"] for p in prom.query(
            'group by (pod, exported_pod) (request_total{direction="inbound"})')]
        wrong = [m for m in pairs if isinstance(m, dict) and m.get("pod") != m.get("exported_pod")]
        if len(pairs) != len(pods) or wrong:
            raise SystemExit(f"targets do not each scrape their own path: {len(pairs)} pods, "
                             f"mismatched {wrong[:3]}")
        need = WINDOW_S // SCRAPE_S + 2
        held = (f'min(count_over_time(up{{job="{PROXY_JOB}"}}[{WINDOW_S + 2 * SCRAPE_S}s]))'
                f" >= {need}")
        prom.wait(lambda: bool(prom.query(held)), 120 + 2 * WINDOW_S, "a whole stat window")
        series = json.loads(prom.get("/api/v1/status/tsdb") or "{}")["data"]["headStats"][
            "numSeries"]
        print(f"{len(pods)} targets scraped every {SCRAPE_S} s from one exporter, a whole "
              f"window after {time.monotonic() - t0:.0f} s; {series:,.0f} series in the head")
        load0 = os.getloadavg()
        cpu0 = {"prometheus": cpu_s(prom.proc.pid), "exporter": cpu_s(exporter.pid or 0)}
        t0 = time.monotonic()
        calls = asyncio.run(measure(prom.url, pods, history_end, a))
        wall = time.monotonic() - t0
        cpu = {k: cpu_s(pid) - cpu0[k]
               for k, pid in (("prometheus", prom.proc.pid), ("exporter", exporter.pid or 0))}
        load1 = os.getloadavg()
        # A busy Prometheus falls behind its scrapes: a window missing some is
        # extrapolated, and its rates come out low, whatever the source does with them.
        span = round(wall) + WINDOW_S
        late = prom.query(f'count(count_over_time(up{{job="{PROXY_JOB}"}}[{span}s])'
                          f" < {span // SCRAPE_S - 1})")
        notes = [f"  targets missing two or more of their {span // SCRAPE_S} scrapes over the "
                 f"calls and the window before them: "
                 f"{late[0]['value'][1] if late else 0} of {len(pods)}"]  # type: ignore[index]
        if a.breakdown:
            notes += breakdown(prom, pods[0].namespace, pods[0].deployment)
    finally:
        if prom is not None:
            prom.close()
        exporter.terminate()
        exporter.join(10)
    print(f"PrometheusSource, {a.rounds} rounds of one call of each kind, one at a time "
          f"(load average {load0[0]:.2f} before, {load1[0]:.2f} after, {os.cpu_count()} cores):")
    ok = True
    for c in calls:
        met = max(c.wall) <= TARGET_S
        over = sum(1 for t in c.wall if t > TARGET_S)
        right = "answers right" if not c.faults else "WRONG: " + c.faults[0]
        print(f"  {c.label}: min {ms(c.wall, min)} ms, median {ms(c.wall, statistics.median)} "
              f"ms, max {ms(c.wall, max)} ms; meshtui's CPU median "
              f"{ms(c.cpu, statistics.median)} ms; target <= 1 s "
              f"{'met' if met else f'NOT met ({over} of {len(c.wall)} calls over)'}; {right}")
        ok = ok and met and not c.faults
    print(f"  Prometheus's CPU over the {wall:.0f} s of calls: {cpu['prometheus']:.1f} s "
          f"({cpu['prometheus'] / wall:.0%} of a core, scrapes included); the exporter's "
          f"{cpu['exporter']:.1f} s")
    print("\n".join(notes))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20, help="timed calls of each kind")
    ap.add_argument("--namespaces", type=int, default=2)
    ap.add_argument("--deployments", type=int, default=10)
    ap.add_argument("--pods", type=int, default=50, help="pods per deployment")
    ap.add_argument("--backfill-step", type=int, default=SCRAPE_S,
                    help="seconds between the backfilled samples")
    ap.add_argument("--pause", type=float, default=0.1, help="seconds between calls")
    ap.add_argument("--breakdown", action="store_true",
                    help="then time each query of the slowest calls in Prometheus alone")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    promtool = shutil.which("promtool")
    if PROMETHEUS is None or promtool is None:
        print("needs Debian's prometheus package (prometheus and promtool on PATH): "
              "apt-get install prometheus", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="meshtui-prombench-"))
    try:
        return run(a, promtool, workdir)
    finally:
        if a.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
