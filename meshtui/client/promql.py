"""Linkerd viz's PromQL, built for a :class:`~meshtui.client.queries.StatQuery`.

The selectors, groupings and query shapes are those of viz's metrics API
(``viz/metrics-api/stat_summary.go`` and ``viz/pkg/prometheus``), so that
meshtui prints what ``linkerd viz stat`` prints against the same Prometheus:

- without ``--from``/``--to``: the resource's inbound traffic, grouped by
  ``(namespace, RES)``, where RES is the resource's label (``deployment``,
  ``pod``; just ``namespace`` for namespaces);
- ``--to R``: the resource's outbound traffic whose destination is R
  (``dst_RES``/``dst_namespace`` labels, only when R is named);
- ``--from R``: R's outbound traffic, grouped by its destination
  (``dst_namespace, dst_RES``) and narrowed to the resource when it is named.

Pure text in, text out: no I/O, so every selector is tested on its own.
"""

from __future__ import annotations

from meshtui.client.queries import ResourceRef, StatQuery

# The scrape job of Linkerd viz's Prometheus (and of the demo's) for proxies.
PROXY_JOB = "linkerd-proxy"
QUANTILES = (0.5, 0.95, 0.99)
#: A row's latency figures by name (p50, p95, p99), and the quantile each is.
QUANTILE_NAMES = {f"p{round(q * 100)}": q for q in QUANTILES}
#: The query whose answer the quantiles are taken from (see latency_rates).
LATENCY = "latency"

Labels = dict[str, str]


def resource_label(kind: str) -> str:
    """Linkerd's label for a kind: ``deployment``, ``pod``, ``namespace``."""
    return kind


def group_by(kind: str) -> list[str]:
    return ["namespace"] if kind == "namespace" else ["namespace", resource_label(kind)]


def dst_group_by(kind: str) -> list[str]:
    return ["dst_namespace"] if kind == "namespace" else [
        "dst_namespace", "dst_" + resource_label(kind)]


def query_labels(ref: ResourceRef) -> Labels:
    """A resource as labels on its own proxies' series."""
    kind, namespace, name = ref
    out: Labels = {}
    if name:
        out[resource_label(kind)] = name
    if kind != "namespace" and namespace:
        out["namespace"] = namespace
    return out


def dst_query_labels(ref: ResourceRef) -> Labels:
    """A resource as the destination of others' outbound series (only when named, as viz)."""
    kind, namespace, name = ref
    out: Labels = {}
    if name:
        out["dst_" + resource_label(kind)] = name
        if kind != "namespace" and namespace:
            out["dst_namespace"] = namespace
    return out


def request_labels(q: StatQuery) -> tuple[Labels, list[str]]:
    """(the selector's labels, the grouping) of viz's ``buildRequestLabels``."""
    sel: ResourceRef = (q.kind, q.namespace, q.name)
    if q.to is not None:
        labels = {**dst_query_labels(q.to), **query_labels(sel), "direction": "outbound"}
        group = group_by(q.kind)
    elif q.from_ is not None:
        labels = {**query_labels(q.from_), **dst_query_labels(sel), "direction": "outbound"}
        group = dst_group_by(q.kind)
    else:
        labels = {**query_labels(sel), "direction": "inbound"}
        group = group_by(q.kind)
    if q.owner:  # a deployment's pods
        labels["deployment"] = q.owner
    return labels, group


def selector(labels: Labels) -> str:
    """``{a="1", b="2"}`` with names sorted and values escaped, as Prometheus writes a set."""
    if not labels:
        return ""
    return "{" + ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def duration(seconds: float) -> str:
    """A PromQL range: whole seconds."""
    return f"{max(1, round(seconds))}s"


def latency_rates(sel: str, w: str, by: str) -> str:
    """The latency buckets' rates, grouped: the inner expression of viz's quantiles.

    Viz asks ``histogram_quantile(Q, <this>)`` once for each of p50, p95 and p99,
    and Prometheus evaluates these rates over every bucket series for each of the
    three. meshtui asks for them once and takes the three quantiles itself, by
    Prometheus's own rules (:mod:`meshtui.model.prom_quantile`): the same figures
    for a third of the work.
    """
    return f"sum(irate(response_latency_ms_bucket{sel}[{w}])) by (le, {by})"


def viz_quantile(quantile: float, rates: str) -> str:
    """Viz's own query for one quantile over :func:`latency_rates`' answer."""
    return f"histogram_quantile({quantile}, {rates})"


def stat_queries(q: StatQuery) -> tuple[dict[str, str], list[str]]:
    """Every query of one stat refresh, by name, and the grouping of their results.

    ``requests``, ``tcp``, ``read``/``write`` are viz's, ``latency`` the rates
    viz's p50/p95/p99 are taken from; ``targets`` and ``up`` count the proxies
    Prometheus scrapes per resource (what MESHED shows over Prometheus),
    ``scraped`` is when it last did, ``down`` the proxies whose last scrape failed.
    """
    labels, group = request_labels(q)
    sel = selector(labels)
    by = ", ".join(group)
    w = duration(q.window_s)
    peer = "dst" if (q.to is not None or q.from_ is not None) else "src"
    tcp_sel = selector({**labels, "peer": peer})
    out = {
        "requests": f"sum(increase(response_total{sel}[{w}])) by ({by}, classification, tls)",
        "tcp": f"sum(tcp_open_connections{sel}) by ({by})",
        "read": f"sum(increase(tcp_read_bytes_total{tcp_sel}[{w}])) by ({by})",
        "write": f"sum(increase(tcp_write_bytes_total{tcp_sel}[{w}])) by ({by})",
    }
    out[LATENCY] = latency_rates(sel, w, by)
    targets, meshed_by = targets_selector(q)
    out["targets"] = f"count(up{targets}) by ({meshed_by})"
    out["up"] = f"sum(up{targets}) by ({meshed_by})"
    out["scraped"] = f"max(timestamp(up{targets}))"
    out["down"] = f"up{targets} == 0"
    if q.name:  # one resource (the dashboard's charts): its latency distribution too
        out["buckets"] = (f"sum(increase(response_latency_ms_bucket{sel}[{w}]))"
                          f" by (le, {by})")
    return out, group


def targets_selector(q: StatQuery) -> tuple[str, str]:
    """The proxies behind the selected resource (for MESHED), and their grouping.

    Pods are grouped with their deployment too, so a pod's row knows its owner.
    """
    labels = {"job": PROXY_JOB, **query_labels((q.kind, q.namespace, q.name))}
    if q.owner:
        labels["deployment"] = q.owner
    group = group_by(q.kind)
    if q.kind == "pod":
        group = [*group, "deployment"]
    return selector(labels), ", ".join(group)


def history_queries(q: StatQuery, step_s: float, scrape_s: float = 10.0
                    ) -> tuple[dict[str, str], list[str]]:
    """Range queries for charts: rps, success, and the latency rates p50/p95/p99 are
    taken from at each step.

    Each point covers at least four scrapes (40 s at Linkerd's 10 s interval),
    so a step shorter than the scrape interval does not leave gaps.
    """
    labels, group = request_labels(q)
    by = ", ".join(group)
    w = duration(max(step_s, 4 * scrape_s))
    sel = selector(labels)
    ok = selector({**labels, "classification": "success"})
    out = {
        "rps": f"sum(rate(response_total{sel}[{w}])) by ({by})",
        # A step with failures only has no success series: count it as 0, not absent.
        "success": (f"(sum(rate(response_total{ok}[{w}])) by ({by})"
                    f" or 0 * sum(rate(response_total{sel}[{w}])) by ({by}))"
                    f" / sum(rate(response_total{sel}[{w}])) by ({by})"),
    }
    out[LATENCY] = latency_rates(sel, w, by)
    return out, group
