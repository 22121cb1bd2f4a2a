"""Edges from a real Prometheus: viz's outbound response_total grouped by both ends."""

from __future__ import annotations

import asyncio

import pytest
from promkit import WINDOW, Prometheus, needs_prometheus

from meshtui.client.prom_edges import edge_queries
from meshtui.client.prometheus_source import PrometheusSource
from meshtui.client.queries import EdgeQuery
from meshtui.model.edges import EdgeRow

pytestmark = [needs_prometheus, pytest.mark.slow]


def edges(prom: Prometheus, q: EdgeQuery) -> list[EdgeRow]:
    async def go() -> list[EdgeRow]:
        src = PrometheusSource(prom.url)
        try:
            return await src.edges(q)
        finally:
            await src.close()

    return asyncio.run(go())


def ends(rows: list[EdgeRow]) -> list[tuple[str, str, str, str]]:
    return [(e.src_namespace, e.src, e.dst_namespace, e.dst) for e in rows]


def test_the_outbound_calls_of_a_namespace_are_its_edges(prom: Prometheus) -> None:
    rows = edges(prom, EdgeQuery("deployment", "emojivoto", window_s=WINDOW))
    assert ends(rows) == [
        ("emojivoto", "web", "emojivoto", "voting")]
    e = rows[0]
    assert e.secured  # the series' tls="true"
    assert e.rps == pytest.approx(5, rel=0.1) and e.success == 1.0
    assert e.p99_ms is not None and 20 <= e.p99_ms <= 30  # every call took 30 ms
    # Every namespace finds the same edge; another namespace, none.
    assert ends(edges(prom, EdgeQuery("deployment", None, window_s=WINDOW))) == ends(rows)
    assert edges(prom, EdgeQuery("deployment", "other", window_s=WINDOW)) == []
    # The series name no destination pod: no pod edge, as viz shows none.
    assert edges(prom, EdgeQuery("pod", "emojivoto", window_s=WINDOW)) == []


def test_edge_queries_read_outbound_series_by_both_ends() -> None:
    queries, group = edge_queries(EdgeQuery("deployment", "emojivoto", window_s=60))
    assert group == ["namespace", "deployment", "dst_namespace", "dst_deployment"]
    assert queries["requests"] == (
        'sum(increase(response_total{direction="outbound", namespace="emojivoto"}[60s])) '
        "by (namespace, deployment, dst_namespace, dst_deployment, classification, tls)")


def test_a_plain_series_with_no_calls_in_the_window_leaves_the_edge_secured() -> None:
    """A proxy keeps its counters for its whole life: a plain series from before its
    certificate came, flat since, must not take SECURED from an edge whose calls in the
    window all went over mutual TLS; one with calls in the window does."""
    from meshtui.client.prom_edges import edge_rows

    q = EdgeQuery("deployment", "emojivoto", window_s=60)
    ends_ = {"namespace": "emojivoto", "deployment": "web", "dst_namespace": "emojivoto",
             "dst_deployment": "voting", "classification": "success"}
    quiet = {"p50": [], "p95": [], "p99": []}
    [row] = edge_rows(q, {"requests": [({**ends_, "tls": "true"}, 600.0),
                                       ({**ends_, "tls": "false"}, 0.0)], **quiet})
    assert row.secured and row.rps == 10.0
    [row] = edge_rows(q, {"requests": [({**ends_, "tls": "true"}, 600.0),
                                       ({**ends_, "tls": "false"}, 6.0)], **quiet})
    assert not row.secured
