"""meshtui's own p50/p95/p99 against a real Prometheus's histogram_quantile.

The Prometheus source asks for the latency buckets' rates once and takes the
quantiles itself: what it prints must be what viz's three ``histogram_quantile``
queries answer over the same data at the same time, to the last bit.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from promkit import BOUNDS, Exporter, Prometheus, Route, needs_prometheus

from meshtui.client.prom_edges import edge_queries
from meshtui.client.prometheus_source import PrometheusSource
from meshtui.client.promql import (
    LATENCY,
    QUANTILE_NAMES,
    history_queries,
    stat_queries,
    viz_quantile,
)
from meshtui.client.queries import EdgeQuery, StatQuery
from meshtui.model.prom_quantile import bucket_quantile, series_quantiles, tolerance_for

pytestmark = [needs_prometheus, pytest.mark.slow]

WINDOW = 10
LE = [*(str(b) for b in BOUNDS), "+Inf"]


def api(prom: Prometheus, path: str, **params: str) -> Any:
    """``data`` of one API call, its parameters sent as a form (queries get long)."""
    import urllib.request

    req = urllib.request.Request(prom.url + path,
                                 data=urlencode(params).encode() if params else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.loads(r.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def tolerance(prom: Prometheus) -> float:
    return tolerance_for(api(prom, "/api/v1/status/buildinfo")["version"])


# --- any buckets, as literals: Prometheus's rules case by case --------------------------


def literal_buckets(rng: random.Random) -> list[tuple[str, float]]:
    """One random set of (le, count): spread, dented, duplicated, noisy, empty, cut."""
    bounds = sorted(rng.sample([0.5, *BOUNDS], rng.randint(1, 8)))
    if rng.random() < 0.1:
        bounds = [rng.choice((0.0, -2.0)), *bounds]
    counts = sorted(rng.uniform(0, 1000) for _ in bounds)
    if rng.random() < 0.2:  # a count below the one before (scrapes ingested apart)
        i = rng.randrange(len(counts))
        counts[i] *= rng.uniform(0.3, 1.0)
    if rng.random() < 0.2:  # float noise between neighbours
        i = rng.randrange(len(counts))
        counts[i] = counts[i - 1] * (1 + rng.choice((1, -1)) * 2.0 ** -45) if i else counts[i]
    if rng.random() < 0.1:
        counts = [0.0] * len(counts)
    out = [(repr(b), c) for b, c in zip(bounds, counts, strict=True)]
    if rng.random() < 0.1:  # le="1" and le="1.0": one bucket
        b, c = out[0]
        out.append((b + "0" if "." in b else b + ".0", c / 3))
    if rng.random() < 0.9:
        total = max(counts) + rng.choice((0.0, rng.uniform(0, 50)))
        out.append(("+Inf", total))
    return out


def as_promql(cases: list[list[tuple[str, float]]]) -> str:
    """The cases as one vector of literal samples, each case its own series."""
    return " or ".join(
        f'label_replace(label_replace(vector({count!r}), "le", "{le}", "", ""), '
        f'"case", "{i}", "", "")'
        for i, buckets in enumerate(cases) for le, count in buckets)


def test_any_buckets_give_what_histogram_quantile_gives(spread: Prometheus) -> None:
    """Any server does: these buckets are literals, not scraped."""
    prom = spread
    rng = random.Random(11)
    cases = [literal_buckets(rng) for _ in range(100)]
    d = 2.0 ** -40  # noise that a 2.49 or later Prometheus ignores and 2.42 does not
    cases.append([("1", 10.0), ("2", 10 + 2 * d), ("5", 20 + 2 * d), ("+Inf", 20 + 2 * d)])
    buckets = as_promql(cases)
    tol = tolerance(prom)
    for q in (0.0, 0.05, 0.5, 0.95, 0.99, 1.0, rng.random()):
        answer = api(prom, "/api/v1/query", query=f"histogram_quantile({q!r}, {buckets})")
        theirs = {int(s["metric"]["case"]): float(s["value"][1]) for s in answer["result"]}
        assert set(theirs) == set(range(len(cases)))
        for i, case in enumerate(cases):
            ours = bucket_quantile(q, [(float(le), c) for le, c in case], tol)
            assert same(ours, theirs[i]), (q, case, ours, theirs[i])


# --- scraped buckets: the source's rows, edges and charts --------------------------------


class Spread(Route):
    """A route whose requests spread over the buckets: ``shares`` of them at most each
    bound of BOUNDS and +Inf (cumulative, made non-monotonic on purpose if asked),
    their rate creeping up so that no two scrapes' rates are round."""

    def __init__(self, rps: float, shares: list[float], dst: dict[str, str] | None = None
                 ) -> None:
        super().__init__(rps, dst=dst or {})
        self.shares = shares

    def lines(self, elapsed: float) -> list[str]:
        plain = [line for line in super().lines(elapsed) if "_bucket" not in line]
        n = self.ok_rps * (elapsed + elapsed ** 1.3 / 7)
        base = {"direction": "outbound" if self.dst else "inbound", **self.dst}
        for le, share in zip(LE, self.shares, strict=True):
            labels = ",".join(f'{k}="{v}"' for k, v in sorted({**base, "le": le}.items()))
            plain.append(f"response_latency_ms_bucket{{{labels}}} {n * share:.3f}")
        return plain


def shares(*marks: tuple[int, float]) -> list[float]:
    """Cumulative shares per bucket of LE from (bound, share from that bound on) marks."""
    at, out, share = dict(marks), [], 0.0
    for bound in BOUNDS:
        share = at.get(bound, share)
        out.append(share)
    return [*out, 1.0]


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """shop/cart (two pods spread over tens of ms, one calling shop/pay), shop/pay (one pod
    whose buckets dip, one with no requests), ads/banner (most under 1 ms, 3 % past 1 s)."""
    pay = {"dst_namespace": "shop", "dst_deployment": "pay", "tls": "true"}
    exporters = [
        (Exporter([Spread(9, shares((1, 0.02), (5, 0.2), (20, 0.55), (50, 0.9), (200, 1.0))),
                   Spread(3, shares((10, 0.4), (100, 0.97), (300, 1.0)), pay)]),
         "shop", "cart", "cart-1"),
        (Exporter([Spread(4, shares((3, 0.1), (10, 0.5), (40, 0.8), (500, 1.0)))]),
         "shop", "cart", "cart-2"),
        (Exporter([Spread(5, shares((2, 0.3), (4, 0.6), (5, 0.45), (30, 1.0)))]),
         "shop", "pay", "pay-1"),
        (Exporter([Spread(0, shares((1, 1.0)))]), "shop", "pay", "pay-2"),
        (Exporter([Spread(6, shares((1, 0.7), (2, 0.9), (1000, 0.97)))]),
         "ads", "banner", "banner-1"),
    ]
    targets = {e.address: {"namespace": ns, "deployment": d, "pod": p}
               for e, ns, d, p in exporters}
    p = Prometheus(tmp_path_factory.mktemp("spread"), targets)
    try:
        p.wait(lambda: bool(p.query("min(count_over_time(up[1m])) >= 5")), 30, "scrapes")
        yield p
    finally:
        p.close()
        for e, *_ in exporters:
            e.close()


def local_and_viz(prom: Prometheus, latency: str, params: dict[str, str], tol: float,
                  path: str = "/api/v1/query") -> None:
    """Quantiles from the rates answer, step by step, against viz's own queries."""
    rates = api(prom, path, query=latency, **params)["result"]
    steps: dict[str, list[tuple[dict[str, str], float]]] = {}
    for s in rates:
        for t, v in s.get("values", [s.get("value")]):
            steps.setdefault(t, []).append((s["metric"], float(v)))
    ours = {(t, tuple(sorted(labels.items()))): qs for t, samples in steps.items()
            for labels, qs in series_quantiles(samples, tuple(QUANTILE_NAMES.values()), tol)}
    for i, quantile in enumerate(QUANTILE_NAMES.values()):
        theirs = {(t, tuple(sorted(s["metric"].items()))): float(v)
                  for s in api(prom, path, query=viz_quantile(quantile, latency),
                               **params)["result"]
                  for t, v in s.get("values", [s.get("value")])}
        assert set(theirs) == set(ours)
        for key, v in theirs.items():
            assert same(ours[key][i], v), (latency, quantile, key, ours[key][i], v)


def test_scraped_buckets_give_viz_quantiles_for_rows_edges_and_charts(spread: Prometheus
                                                                      ) -> None:
    tol = tolerance(spread)
    at = round(time.time() - 2, 3)  # every scrape before it is in: the answers hold still
    queries = [StatQuery("pod", window_s=WINDOW), StatQuery("deployment", "shop", window_s=WINDOW),
               StatQuery("namespace", window_s=WINDOW),
               StatQuery("deployment", "shop", "cart", WINDOW,
                         to=("deployment", "shop", "pay")),
               StatQuery("deployment", "shop", window_s=WINDOW,
                         from_=("deployment", "shop", "cart"))]
    for q in queries:
        local_and_viz(spread, stat_queries(q)[0][LATENCY], {"time": f"{at:.3f}"}, tol)
    edges, _ = edge_queries(EdgeQuery("deployment", "shop", WINDOW))
    local_and_viz(spread, edges[LATENCY], {"time": f"{at:.3f}"}, tol)
    chart, _ = history_queries(StatQuery("deployment", "shop", "cart"), 2, 1)
    end = at - at % 2
    local_and_viz(spread, chart[LATENCY], {"start": f"{end - 20:.3f}", "end": f"{end:.3f}",
                                           "step": "2"}, tol, "/api/v1/query_range")

    # The source's rows and chart points carry those figures (none where no requests).
    async def go() -> tuple[Any, Any]:
        src = PrometheusSource(spread.url)
        try:
            snap = await src.stats(replace(queries[0], until=at))
            hist = await src.history(StatQuery("deployment", "shop", "cart", until=at), 20, 2)
            return snap, hist
        finally:
            await src.close()

    snap, hist = asyncio.run(go())
    pods = stat_queries(queries[0])[0][LATENCY]
    cart = chart[LATENCY]
    rows = {r.name: r for r in snap.rows}
    assert set(rows) == {"cart-1", "cart-2", "pay-1", "pay-2", "banner-1"}
    assert rows["pay-2"].p50_ms is None and rows["banner-1"].p99_ms == 1000.0
    assert 0 < rows["banner-1"].p50_ms < 1  # inside the lowest bucket, from 0
    points = hist[("deployment", "shop", "cart")]
    assert points  # a few: the server started seconds ago
    for name, quantile in QUANTILE_NAMES.items():
        viz = {s["metric"]["pod"]: float(s["value"][1])
               for s in api(spread, "/api/v1/query", query=viz_quantile(quantile, pods),
                            time=f"{at:.3f}")["result"]}
        for pod, row in rows.items():
            got = getattr(row, f"{name}_ms")
            assert got == (viz[pod] if row.has_traffic else None), (pod, name)
        viz_points = {float(t): float(v) for s in api(
            spread, "/api/v1/query_range", query=viz_quantile(quantile, cart),
            start=f"{end - 20:.3f}", end=f"{end:.3f}", step="2")["result"]
            for t, v in s["values"]}
        assert {p.at: v for p in points if (v := getattr(p, f"{name}_ms")) is not None} == {
            t: v for t, v in viz_points.items() if math.isfinite(v)}
