"""Answers to ``edges``: who calls whom, from the sources' outbound series.

An edge is a (source resource, destination resource) pair of the same type:
the source's pods' outbound series whose destination lies in the destination
resource, summed over the window. Destinations the proxies and the inventory
could not name are left out, as Linkerd leaves out series without dst labels.
"""

from __future__ import annotations

import time
from typing import cast

from meshtui.controller.stats import (
    DEPLOY,
    NS,
    Sel,
    check_end,
    check_selector,
    check_window,
    fill_stat_row,
    resource,
    row_totals,
    rows_of,
)
from meshtui.controller.store import OUTBOUND, GroupKey, MeshStore, PodState
from meshtui.v1 import common_pb2, controller_pb2


def _dst_of(kind: common_pb2.ResourceType.ValueType, g: GroupKey) -> Sel | None:
    """The resource of a kind that a destination group lies in; None when unnamed."""
    _, ns, deploy, pod = g
    if not ns:
        return None
    if kind == NS:
        return Sel(NS, "", ns)
    name = deploy if kind == DEPLOY else pod
    return Sel(kind, ns, name) if name else None


def _dst_pods(dst: Sel, store: MeshStore) -> list[PodState]:
    return [st for st in store.states() if dst.has_pod(st)]


def edges(req: controller_pb2.EdgesRequest, store: MeshStore,
          now: float | None = None) -> controller_pb2.EdgesResponse:
    """One edge per (source, destination) with traffic in the window, sorted."""
    sel = check_selector(req.selector, store, what="resource")
    assert sel is not None
    window = check_window(req.window_s)
    wall = check_end(req.end_ms, window, store.clock() if now is None else now)
    mono = time.monotonic()
    out = controller_pb2.EdgesResponse(timestamp_ms=int(wall * 1000))
    for row, pods in rows_of(sel, store):
        # Destinations any of the row's pods' histories hold (a restarted proxy's
        # earlier ones included: their calls may still be in the window).
        dsts: set[Sel] = set()
        for st in pods:
            if st.windows is None:
                continue
            for g in st.windows.groups():
                g = cast(GroupKey, g)
                if g[0] == OUTBOUND and (d := _dst_of(row.type, g)) is not None:
                    dsts.add(d)
        for dst in sorted(dsts, key=lambda d: (d.namespace, d.name)):
            tot = row_totals(row, pods, None, dst, store, wall, window,
                             answering_only=not req.end_ms)
            if not tot.has_traffic:
                continue
            # SECURED over the window, as over Prometheus: every response in it was
            # mutual TLS (the counts of each kind, not a flag of the proxy's whole life).
            edge = out.edges.add(tls=tot.all_tls)
            resource(row, pods, store, mono, edge.src)
            resource(dst, _dst_pods(dst, store), store, mono, edge.dst)
            scratch = controller_pb2.StatRow()
            fill_stat_row(scratch, tot)
            edge.stats.CopyFrom(scratch.stats)
    return out
