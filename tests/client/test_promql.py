"""Linkerd viz's selectors and groupings, query by query."""

import math

import pytest

from meshtui.client.prometheus_source import bucket_quantile
from meshtui.client.promql import history_queries, request_labels, selector, stat_queries
from meshtui.client.queries import StatQuery


def test_inbound_selector_per_kind() -> None:
    assert request_labels(StatQuery("deployment", "emojivoto")) == (
        {"namespace": "emojivoto", "direction": "inbound"}, ["namespace", "deployment"])
    assert request_labels(StatQuery("deployment", "emojivoto", "web")) == (
        {"deployment": "web", "namespace": "emojivoto", "direction": "inbound"},
        ["namespace", "deployment"])
    # A namespace is named by the namespace label itself; all namespaces: no label.
    assert request_labels(StatQuery("namespace", "emojivoto", "emojivoto")) == (
        {"namespace": "emojivoto", "direction": "inbound"}, ["namespace"])
    assert request_labels(StatQuery("namespace")) == ({"direction": "inbound"}, ["namespace"])


def test_to_and_from_are_outbound_with_dst_labels_only_when_named() -> None:
    to = StatQuery("deployment", "emojivoto", "web", to=("deployment", "emojivoto", "voting"))
    assert request_labels(to) == ({"dst_deployment": "voting", "dst_namespace": "emojivoto",
                                   "deployment": "web", "namespace": "emojivoto",
                                   "direction": "outbound"}, ["namespace", "deployment"])
    frm = StatQuery("deployment", "emojivoto", from_=("deployment", "emojivoto", "web"))
    assert request_labels(frm) == ({"deployment": "web", "namespace": "emojivoto",
                                    "direction": "outbound"},
                                   ["dst_namespace", "dst_deployment"])


def test_queries_are_viz_shapes_with_sorted_escaped_selectors() -> None:
    q, _ = stat_queries(StatQuery("deployment", "emojivoto", window_s=60))
    sel = '{direction="inbound", namespace="emojivoto"}'
    assert q["requests"] == (f"sum(increase(response_total{sel}[60s])) "
                             "by (namespace, deployment, classification, tls)")
    # viz's histogram_quantile(Q, ...) reads these; the source takes Q itself.
    assert q["latency"] == ("sum(irate(response_latency_ms_bucket"
                            f"{sel}[60s])) by (le, namespace, deployment)")
    assert q["tcp"] == f"sum(tcp_open_connections{sel}) by (namespace, deployment)"
    assert 'peer="src"' in q["read"]
    assert q["targets"] == ('count(up{job="linkerd-proxy", namespace="emojivoto"}) '
                            "by (namespace, deployment)")
    assert selector({"b": 'x"y\\z', "a": "1"}) == '{a="1", b="x\\"y\\\\z"}'


def test_history_points_cover_four_scrapes_at_least() -> None:
    q, _ = history_queries(StatQuery("deployment", "emojivoto", "web"), 10, scrape_s=10)
    assert "[40s]" in q["rps"]
    q, _ = history_queries(StatQuery("deployment", "emojivoto", "web"), 240, scrape_s=10)
    assert "[240s]" in q["rps"] and " or 0 * " in q["success"]


def test_bucket_quantile_as_prometheus_takes_it() -> None:
    inf = math.inf
    buckets = [(1.0, 0.0), (2.0, 2.0), (4.0, 8.0), (inf, 10.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(2 + 2 * (5 - 2) / 6)
    assert bucket_quantile(0.1, reversed(buckets)) == pytest.approx(1.5)  # order no matter
    assert bucket_quantile(0.99, buckets) == 4.0  # in +Inf: the highest finite bound
    assert bucket_quantile(0.5, [(10.0, 4.0), (inf, 4.0)]) == pytest.approx(5.0)
    assert math.isnan(bucket_quantile(0.5, [(1.0, 1.0), (2.0, 2.0)]))  # no +Inf
    assert math.isnan(bucket_quantile(0.5, [(1.0, 0.0), (inf, 0.0)]))  # no observations
    assert math.isnan(bucket_quantile(0.5, [(inf, 3.0)]))
    # A count below the one before it is raised to it; a bound twice is added up.
    assert bucket_quantile(0.5, [(1.0, 4.0), (2.0, 3.0), (inf, 4.0)]) == pytest.approx(0.5)
    assert bucket_quantile(0.5, [(1.0, 1.0), (1.0, 1.0), (inf, 4.0)]) == 1.0
    assert bucket_quantile(-1, buckets) == -inf and bucket_quantile(2, buckets) == inf
