"""Linkerd viz's selectors and groupings, query by query."""

from meshtui.client.promql import (
    history_queries,
    request_labels,
    selector,
    stat_queries,
    viz_quantile,
)
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
    # Viz's p50/p95/p99 are histogram_quantile over these rates: asked once, taken locally.
    assert q["latency"] == ("sum(irate(response_latency_ms_bucket"
                            f"{sel}[60s])) by (le, namespace, deployment)")
    assert "p95" not in q
    assert viz_quantile(0.95, q["latency"]) == (
        "histogram_quantile(0.95, sum(irate(response_latency_ms_bucket"
        f"{sel}[60s])) by (le, namespace, deployment))")
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
