"""Wire messages → model types, and model selectors → wire selectors.

Every string that came from traffic (paths, authorities, headers) or from
the inventory (names) is cleaned here, once, on its way into the client.
"""

from __future__ import annotations

import math

from meshtui.model.sanitize import clean
from meshtui.model.stats import StatRow
from meshtui.v1 import common_pb2, controller_pb2

KIND_NAMES = {
    common_pb2.NAMESPACE: "namespace",
    common_pb2.DEPLOYMENT: "deployment",
    common_pb2.POD: "pod",
}
KIND_VALUES = {v: k for k, v in KIND_NAMES.items()}


def selector(kind: str, namespace: str | None, name: str | None) -> common_pb2.ResourceSelector:
    """``kind`` is one of the model's kinds; None namespace/name mean "all"."""
    return common_pb2.ResourceSelector(type=KIND_VALUES[kind], namespace=namespace or "",
                                       name=name or "")


def _nan_none(v: float) -> float | None:
    return None if math.isnan(v) else v


def stat_row(row: controller_pb2.StatRow) -> StatRow:
    res = row.resource
    traffic = row.has_traffic
    st = row.stats
    total = st.success_count + st.failure_count
    window = st.window_s or 0.0
    has_requests = traffic and total > 0 and window > 0
    return StatRow(
        kind=KIND_NAMES.get(res.type, "pod"),
        namespace=clean(res.namespace),
        name=clean(res.name),
        meshed=res.meshed_pods,
        total=res.total_pods,
        reachable=res.reachable,
        success=(st.success_count / total) if has_requests else None,
        rps=(total / window) if has_requests else None,  # TCP-only: "-", as Linkerd shows
        p50_ms=_nan_none(st.latency_ms_p50) if has_requests else None,
        p95_ms=_nan_none(st.latency_ms_p95) if has_requests else None,
        p99_ms=_nan_none(st.latency_ms_p99) if has_requests else None,
        tcp_conn=row.tcp.open_connections if traffic else None,
        read_bytes_rate=row.tcp.read_bytes_rate if traffic else None,
        write_bytes_rate=row.tcp.write_bytes_rate if traffic else None,
        window_s=window or 0.0,
        owner=clean(res.deployment),
    )
