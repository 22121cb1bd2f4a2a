"""Edges over a Prometheus, as Linkerd viz's metrics API finds them.

Viz reads edges from ``response_total`` with ``direction="outbound"``: each
series of a proxy names its own resource (``namespace``, ``deployment``,
``pod``) and its peer's (``dst_namespace``, ``dst_deployment``, ``dst_pod``),
so summing by both sides' labels gives one series per edge. Its ``tls``
label says whether the traffic went over mTLS (SECURED). Pure text and
numbers here: the source does the asking.
"""

from __future__ import annotations

import math
from typing import Any

from meshtui.client.promql import (
    LATENCY,
    QUANTILE_NAMES,
    dst_group_by,
    duration,
    group_by,
    latency_rates,
    query_labels,
    selector,
)
from meshtui.client.queries import EdgeQuery
from meshtui.model.edges import EdgeRow
from meshtui.model.sanitize import clean

Sample = tuple[dict[str, str], float]
EdgeKey = tuple[str, str, str, str]  # src namespace, src, dst namespace, dst


def edge_queries(q: EdgeQuery) -> tuple[dict[str, str], list[str]]:
    """The queries of one ``edges`` answer, by name, and the grouping of their results."""
    sel = selector({**query_labels((q.kind, q.namespace, None)), "direction": "outbound"})
    group = group_by(q.kind) + dst_group_by(q.kind)
    by = ", ".join(group)
    w = duration(q.window_s)
    out = {"requests": f"sum(increase(response_total{sel}[{w}])) by ({by}, classification, tls)",
           LATENCY: latency_rates(sel, w, by)}
    return out, group


def _key(kind: str, labels: dict[str, str]) -> EdgeKey | None:
    """Both ends of a series; None when the destination is not named (no dst labels)."""
    if kind == "namespace":
        src, dst = labels.get("namespace", ""), labels.get("dst_namespace", "")
        return ("", clean(src), "", clean(dst)) if src and dst else None
    src, dst = labels.get(kind, ""), labels.get("dst_" + kind, "")
    src_ns, dst_ns = labels.get("namespace", ""), labels.get("dst_namespace", "")
    if not (src and dst and dst_ns):
        return None
    return (clean(src_ns), clean(src), clean(dst_ns), clean(dst))


def edge_rows(q: EdgeQuery, results: dict[str, Any]) -> list[EdgeRow]:
    """One row per edge with requests in the window, sorted by source then destination."""
    ok: dict[EdgeKey, float] = {}
    total: dict[EdgeKey, float] = {}
    secured: dict[EdgeKey, bool] = {}
    for labels, v in results["requests"]:
        key = _key(q.kind, labels)
        if key is None or not math.isfinite(v):
            continue
        total[key] = total.get(key, 0.0) + v
        if labels.get("classification") == "success":
            ok[key] = ok.get(key, 0.0) + v
        if v > 0:  # a series with no traffic in the window (plain, long ago) has no say
            secured[key] = secured.get(key, True) and labels.get("tls") == "true"
    quantiles: dict[str, dict[EdgeKey, float]] = {}
    for name in QUANTILE_NAMES:
        quantiles[name] = {}
        for labels, v in results[name]:
            if (key := _key(q.kind, labels)) is not None and math.isfinite(v):
                quantiles[name][key] = v
    window = float(q.window_s)
    rows = []
    for key in sorted(k for k, n in total.items() if n > 0):
        n = total[key]
        rows.append(EdgeRow(q.kind, *key, secured=secured.get(key, False),
                            success=ok.get(key, 0.0) / n, rps=n / window,
                            p50_ms=quantiles["p50"].get(key),
                            p95_ms=quantiles["p95"].get(key), p99_ms=quantiles["p99"].get(key)))
    return rows
