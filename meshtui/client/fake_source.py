"""A deterministic mesh for tests and screenshots: same seed, same figures.

It follows the demo's shape (emojivoto with a failing voting service,
kube-system, meshtui, an unmeshed default pod) and moves with a clock the
caller controls, so snapshot tests are stable and pilot tests can watch
values change.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import zlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

from meshtui.client.queries import (
    EdgeQuery,
    HistoryPoint,
    StatQuery,
    StatSnapshot,
    TapBatch,
    TapQuery,
)
from meshtui.model.edges import EdgeRow
from meshtui.model.histogram import Histogram
from meshtui.model.inventory import Workload
from meshtui.model.sanitize import clean
from meshtui.model.stats import StatRow
from meshtui.model.tap import (
    Direction,
    Endpoint,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    StreamId,
    TapEvent,
)

# (namespace, deployment, pods, meshed pods, base rps, success, p50 ms)
WORKLOADS = [
    ("emojivoto", "web", 2, 2, 24.0, 0.92, 3.1),
    ("emojivoto", "emoji", 2, 2, 30.0, 1.0, 1.2),
    ("emojivoto", "voting", 2, 2, 12.0, 0.83, 2.4),
    ("emojivoto", "vote-bot", 1, 1, 0.0, 1.0, 0.0),
    ("kube-system", "kube-dns", 1, 1, 1.0, 1.0, 0.4),
    ("meshtui", "controller", 1, 1, 0.0, 1.0, 0.0),
    ("default", "legacy-app", 1, 0, 0.0, 1.0, 0.0),
]

# Deployment calls: (namespace, caller, callee namespace, callee, share of the
# callee's rps, success).
CALLS = [
    ("emojivoto", "vote-bot", "emojivoto", "web", 1.0, 0.92),
    ("emojivoto", "web", "emojivoto", "emoji", 0.8, 1.0),
    ("emojivoto", "web", "emojivoto", "voting", 1.0, 0.83),
    ("emojivoto", "web", "kube-system", "kube-dns", 0.5, 0.97),
]


class FakeSource:
    def __init__(self, seed: int = 7, clock: Callable[[], float] | None = None,
                 extra_pods: int = 0, tap_rps: float = 200.0,
                 tap_requests: int | None = None) -> None:
        self.seed = seed
        self.tap_rps = tap_rps
        self.tap_requests = tap_requests  # end the tap stream after this many (snapshots)
        self.clock = clock or time.time
        self.calls = 0
        self.extra_pods = extra_pods  # for load tests: that many more pods in "load"
        self._pod_list: list[tuple[str, str, str, bool, float, float, float]] | None = None

    @property
    def label(self) -> str:
        return "controller fake"

    history_s = 15 * 60
    meshed_note = None

    @property
    def tap_label(self) -> str:
        return self.label

    async def ready(self, timeout: float) -> None:
        return None

    def _pods(self) -> list[tuple[str, str, str, bool, float, float, float]]:
        # The same every call: made once (history asks for it 90 times a fetch).
        if self._pod_list is None:
            self._pod_list = self._make_pods()
        return self._pod_list

    def _make_pods(self) -> list[tuple[str, str, str, bool, float, float, float]]:
        out = []
        for ns, deploy, n, meshed, rps, success, p50 in WORKLOADS:
            for i in range(n):
                name = f"{deploy}-{self.seed:04x}{i:05d}"[: len(deploy) + 10]
                out.append((ns, deploy, name, i < meshed, rps / n, success, p50))
        for i in range(self.extra_pods):
            out.append(("load", f"svc-{i // 4:04d}", f"svc-{i // 4:04d}-{i:06d}", True,
                        1.0 + i % 17, 0.9 + (i % 10) / 100, 1.0 + i % 23))
        return out

    def _point(self, rps: float, success: float, p50: float, at: float, key: str
               ) -> tuple[float, float, float, float, float]:
        # A slow wave plus seeded noise: moves with the clock, same for the same
        # inputs. crc32 rather than random.Random: load tests ask for 10,000 rows.
        h = zlib.crc32(f"{self.seed}:{key}:{int(at)}".encode())
        n1, n2, n3 = (h & 0x3FF) / 1023, ((h >> 10) & 0x3FF) / 1023, ((h >> 20) & 0x3FF) / 1023
        wave = 1 + 0.25 * math.sin(at / 30.0 + len(key))
        r = rps * wave * (0.9 + 0.2 * n1)
        s = min(1.0, success * (0.98 + 0.04 * n2))
        q50 = p50 * (0.9 + 0.2 * n3)
        return r, s, q50, q50 * 3.2, q50 * 9.5

    def _row(self, kind: str, ns: str, name: str, members: list[tuple], at: float,
             histogram: bool = False) -> StatRow:
        meshed = sum(1 for m in members if m[3])
        live = [m for m in members if m[3] and m[4] > 0]
        if not live:
            return StatRow(kind, ns, name, meshed, len(members), tcp_conn=None)
        pts = [self._point(m[4], m[5], m[6], at, m[2]) for m in live]
        rps = sum(p[0] for p in pts)
        succ = sum(p[0] * p[1] for p in pts) / rps if rps else 1.0
        p50, p95, p99 = (max(p[2] for p in pts), max(p[3] for p in pts),
                         max(p[4] for p in pts))
        return StatRow(kind, ns, name, meshed, len(members), success=succ, rps=rps,
                       p50_ms=p50, p95_ms=p95, p99_ms=p99, tcp_conn=2 * len(live),
                       read_bytes_rate=rps * 310.0, write_bytes_rate=rps * 1220.0,
                       latency=fake_histogram(rps * 60, p50, p95, p99) if histogram else None)

    def _selected(self, query: StatQuery) -> list[tuple]:
        pods = [p for p in self._pods() if query.namespace in (None, p[0])
                and query.owner in (None, p[1])]
        if query.name:  # one resource: only its pods (load tests chart one of 10,000)
            field = {"namespace": 0, "deployment": 1}.get(query.kind, 2)
            pods = [p for p in pods if p[field] == query.name]
        return pods

    def _rows(self, query: StatQuery, at: float, histograms: bool = False,
              pods: list[tuple] | None = None) -> list[StatRow]:
        if pods is None:
            pods = self._selected(query)
        groups: dict[tuple[str, str], list[tuple]] = {}
        for p in pods:
            if query.kind == "namespace":
                key = (p[0], p[0])
            elif query.kind == "deployment":
                key = (p[0], p[1])
            else:
                key = (p[0], p[2])
            groups.setdefault(key, []).append(p)
        # A histogram only for one named resource, as the real source does.
        rows = [self._row(query.kind, ns, name, members, at,
                          histogram=histograms and query.name == name)
                for (ns, name), members in sorted(groups.items())]
        if query.kind == "namespace":
            rows = [replace(r, namespace="") for r in rows]
        elif query.kind == "pod":
            owners = {p[2]: p[1] for p in pods}
            rows = [replace(r, owner=owners.get(r.name, "")) for r in rows]
        if query.name:
            rows = [r for r in rows if r.name == query.name]
        return rows

    async def stats(self, query: StatQuery) -> StatSnapshot:
        self.calls += 1
        at = self.clock()
        pods = self._pods()
        return StatSnapshot(tuple(self._rows(query, at, histograms=True)), taken_at=at,
                            proxies_reachable=sum(1 for p in pods if p[3]),
                            proxies_total=sum(1 for p in pods if p[3]),
                            last_scrape=at - 0.4)

    async def edges(self, query: EdgeQuery) -> list[EdgeRow]:
        """Deployment calls as CALLS says, their figures moving as the stats' do."""
        if query.kind != "deployment":
            return []
        at = self.clock()
        rows = []
        for ns, src, dst_ns, dst, share, success in CALLS:
            if query.namespace not in (None, ns):
                continue
            base = next(w for w in WORKLOADS if w[1] == dst)
            r, s, p50, p95, p99 = self._point(base[4] * share, success, base[6], at,
                                              f"{src}>{dst}")
            rows.append(EdgeRow("deployment", ns, src, dst_ns, dst, success=s, rps=r,
                                p50_ms=p50, p95_ms=p95, p99_ms=p99))
        return rows

    async def history(self, query: StatQuery, span_s: int, step_s: int
                      ) -> dict[tuple[str, str, str], list[HistoryPoint]]:
        now = self.clock()
        out: dict[tuple[str, str, str], list[HistoryPoint]] = {}
        pods = self._selected(query)
        for k in range(span_s // step_s, 0, -1):
            at = now - k * step_s
            for r in self._rows(query, at, pods=pods):
                out.setdefault(r.key, []).append(
                    HistoryPoint(at, r.rps, r.success, r.p50_ms, r.p95_ms, r.p99_ms))
        return out

    async def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        """Requests through ``web`` at ``tap_rps`` a second, in batches every 50 ms.

        One path in every 97 carries markup and terminal escapes, as a hostile
        client would send, and voting's doughnut always fails.
        """
        seq = 0
        base_us = int(self.clock() * 1e6)
        while self.tap_requests is None or seq < self.tap_requests:
            n = max(1, int(self.tap_rps / 20))
            if self.tap_requests is not None:
                n = min(n, self.tap_requests - seq)
            events: list[TapEvent] = []
            for _ in range(n):
                seq += 1
                events.extend(fake_request(seq, base_us + seq * 1000))
            yield TapBatch(events, {"emojivoto/web-0": 2} if seq % 1000 < n else {}, {}, 0)
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        pass


def fake_histogram(count: float, p50_ms: float, p95_ms: float, p99_ms: float) -> Histogram:
    """About ``count`` latencies whose quantiles are near the given ones (log-linear
    between them, a tail to twice p99), for the dashboard's distribution chart."""
    h = Histogram()
    n = max(int(count), 1)
    marks = [(0.0, p50_ms / 4), (0.5, p50_ms), (0.95, p95_ms), (0.99, p99_ms),
             (1.0, p99_ms * 2)]
    steps = 200
    for k in range(steps):
        q = (k + 0.5) / steps
        (q0, v0), (q1, v1) = next((a, b) for a, b in itertools.pairwise(marks)
                                  if a[0] <= q <= b[0])
        ms = v0 * (v1 / v0) ** ((q - q0) / (q1 - q0))
        weight = n // steps + (1 if k < n % steps else 0)
        if weight:
            h.record(ms * 1000, weight)
    return h


_PATHS = ["/api/list", "/api/vote?choice=:rocket:", "/api/vote?choice=:doughnut:",
          "/api/leaderboard", "/"]


def fake_request(seq: int, at_us: int) -> list[TapEvent]:
    """The three steps of one deterministic request (see FakeSource.tap)."""
    src = Endpoint("10.0.0.7", 40000 + seq % 1000, Workload("emojivoto", "vote-bot", "vote-bot-0"))
    dst = Endpoint("10.0.0.3", 8080, Workload("emojivoto", "web", "web-0"))
    path = (clean("/[bold]x\x1b[2J") if seq % 97 == 0 else _PATHS[seq % len(_PATHS)])
    status = 500 if "doughnut" in path else (404 if seq % 53 == 0 else 200)
    latency = 800 + (zlib.crc32(str(seq).encode()) % 9000)
    common: dict[str, Any] = {"source": src, "destination": dst, "direction": Direction.INBOUND,
              "stream": StreamId(1 + seq // 100, seq % 100)}
    return [
        RequestInit(**common, timestamp_us=at_us, method="GET", scheme="http",
                    authority="web-svc.emojivoto:80", path=path,
                    headers=(("user-agent", "vote-bot"), ("authorization", "<redacted>"))),
        ResponseInit(**common, timestamp_us=at_us + latency, status=status, latency_us=latency,
                     headers=(("content-type", "application/json"),)),
        ResponseEnd(**common, timestamp_us=at_us + latency + 40, since_request_us=latency + 40,
                    duration_us=40, response_bytes=120 + seq % 700),
    ]
