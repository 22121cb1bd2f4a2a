"""Answers to ``stat``: rows per resource over a window, with ``--from``/``--to``.

Which series a row sums, as Linkerd does it:

* no ``from``/``to``: the inbound series of the row's own pods (what they served);
* ``to X``: the outbound series of the row's pods whose destination is in X;
* ``from X``: the outbound series of X's pods whose destination is the row.

TCP figures come from the same kind of series. Meshed counts are pods whose
proxy answered recently over pods; reachability is "every proxy that should
answer does".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from meshtui.controller.store import INBOUND, OUTBOUND, GroupKey, MeshStore, PodState
from meshtui.model.windows import WindowTotals, dense_latency, histogram_of
from meshtui.v1 import common_pb2, controller_pb2

NS, DEPLOY, POD = common_pb2.NAMESPACE, common_pb2.DEPLOYMENT, common_pb2.POD
TYPE_NAMES: dict[common_pb2.ResourceType.ValueType, str] = {
    NS: "namespace", DEPLOY: "deployment", POD: "pod"}
DEFAULT_WINDOW_S = 60
MAX_WINDOW_S = 900


class BadRequest(ValueError):
    """The request names nothing the controller knows; sent as INVALID_ARGUMENT."""


@dataclass(frozen=True, slots=True)
class Sel:
    """A wire selector, checked: type, and namespace/name ("" = all)."""

    type: common_pb2.ResourceType.ValueType
    namespace: str
    name: str

    def describe(self) -> str:
        what = f"{TYPE_NAMES[self.type]}/{self.name}" if self.name else TYPE_NAMES[self.type]
        return f"{what} in namespace {self.namespace}" if self.namespace else what

    def has_pod(self, st: PodState) -> bool:
        p = st.pod
        if self.namespace and p.namespace != self.namespace:
            return False
        if not self.name:
            return self.type != DEPLOY or bool(p.deployment)
        if self.type == NS:
            return p.namespace == self.name
        if self.type == DEPLOY:
            return p.deployment == self.name
        return p.name == self.name

    def has_dst(self, g: GroupKey) -> bool:
        """Whether a group's destination lies in this selection."""
        _, ns, deploy, pod = g
        if self.namespace and ns != self.namespace:
            return False
        if self.type == NS:
            return ns == self.name if self.name else bool(ns)
        if self.type == DEPLOY:
            return deploy == self.name if self.name else bool(deploy)
        return pod == self.name if self.name else bool(pod)


def check_selector(sel: common_pb2.ResourceSelector, store: MeshStore, *, what: str,
                   required: bool = True) -> Sel | None:
    """Turns a wire selector into a :class:`Sel`; BadRequest for nonsense or unknown names."""
    if sel.type == common_pb2.RESOURCE_TYPE_UNSPECIFIED:
        if sel.name or sel.namespace or required:
            raise BadRequest(f"{what} needs a resource type: namespace, deployment or pod")
        return None
    if sel.type not in TYPE_NAMES:
        raise BadRequest(f"{what}: unknown resource type {sel.type}")
    s = Sel(sel.type, sel.namespace, sel.name)
    if s.namespace and s.namespace not in {p.namespace for p in store.inventory.pods}:
        raise BadRequest(f"{what}: namespace {s.namespace} not found")
    if s.name and not any(s.has_pod(st) for st in store.states()):
        raise BadRequest(f"{what}: {s.describe()} not found")
    return s


def check_end(end_ms: int, window_s: int, now: float) -> float:
    """When the asked window ends: now, or a past moment whose window is still held."""
    if not end_ms:
        return now
    end = end_ms / 1000
    if end > now + 1:
        raise BadRequest("the window ends in the future")
    if now - end + window_s > MAX_WINDOW_S + 5:
        raise BadRequest(f"the controller keeps the last {MAX_WINDOW_S // 60} minutes; older "
                         "figures need a Prometheus (--prometheus URL)")
    return min(end, now)


def check_window(window_s: int) -> int:
    if window_s == 0:
        return DEFAULT_WINDOW_S
    if window_s > MAX_WINDOW_S:
        raise BadRequest(f"window {window_s}s is longer than the {MAX_WINDOW_S}s of history kept")
    return window_s


def rows_of(sel: Sel, store: MeshStore) -> list[tuple[Sel, list[PodState]]]:
    """One exact selector per resource the selection names, with its pods, sorted."""
    rows: dict[tuple[str, str], list[PodState]] = {}
    for st in store.states():
        if not sel.has_pod(st):
            continue
        p = st.pod
        if sel.type == NS:
            key = ("", p.namespace)
        elif sel.type == DEPLOY:
            key = (p.namespace, p.deployment)
        else:
            key = (p.namespace, p.name)
        rows.setdefault(key, []).append(st)
    return [(Sel(sel.type, ns, name), pods) for (ns, name), pods in sorted(rows.items())]


def resource(row: Sel, pods: list[PodState], store: MeshStore, now: float,
             res: controller_pb2.Resource | None = None) -> controller_pb2.Resource:
    """The wire form of a row's resource, with meshed counts and reachability
    (filled into ``res`` when given: building in place saves a copy per row)."""
    proxied = [st for st in pods if st.windows is not None]
    meshed = sum(1 for st in proxied if store.reachable(st, now))
    if res is None:
        res = controller_pb2.Resource()
    res.type, res.namespace, res.name = row.type, row.namespace, row.name
    res.meshed_pods, res.total_pods, res.proxied_pods = meshed, len(pods), len(proxied)
    # A pod without a proxy has none to reach; a group is reachable when every
    # proxy it has answers.
    res.reachable = meshed == len(proxied) and (row.type != POD or meshed > 0)
    if row.type == POD and pods:
        p = pods[0].pod
        res.deployment = p.deployment
        res.address = str(p.address) if p.address is not None else ""
    last = max((st.last_ok_wall for st in proxied), default=0.0)
    res.last_scrape_ms = int(last * 1000)
    if meshed < len(proxied):
        res.missing_pods.extend(sorted(st.pod.name for st in proxied
                                       if not store.reachable(st, now)))
    return res


def _is_inbound(g: GroupKey) -> bool:
    return g[0] == INBOUND


def _sources(row: Sel, pods: list[PodState], frm: Sel | None, to: Sel | None, store: MeshStore
             ) -> Iterator[tuple[PodState, Callable[[GroupKey], bool]]]:
    """Which pods' windows a row reads, and which of their groups."""
    if frm is not None:
        froms = [st for st in store.states() if frm.has_pod(st)]

        def into_row(g: GroupKey) -> bool:
            return g[0] == OUTBOUND and row.has_dst(g) and (to is None or to.has_dst(g))

        for st in froms:
            yield st, into_row
    elif to is not None:

        def to_dst(g: GroupKey) -> bool:
            return g[0] == OUTBOUND and to.has_dst(g)

        for st in pods:
            yield st, to_dst
    else:
        for st in pods:
            yield st, _is_inbound


def row_totals(row: Sel, pods: list[PodState], frm: Sel | None, to: Sel | None,
               store: MeshStore, now: float, window_s: float, *, answering_only: bool = True
               ) -> WindowTotals:
    """A row's figures over the window; with ``answering_only``, only from proxies that
    answer now (a dead proxy's last figures would stand for the rest of the window)."""
    out = WindowTotals()
    dense = dense_latency()
    mono = time.monotonic()
    for st, match in _sources(row, pods, frm, to, store):
        if st.windows is not None and (not answering_only or store.reachable(st, mono)):
            out.merge(st.windows.totals(now, window_s, match, dense))
    out.latency = histogram_of(dense, out.latency.sum_us)
    return out


def fill_stat_row(row: controller_pb2.StatRow, tot: WindowTotals) -> None:
    """A row's figures, written into its (already named) wire row."""
    row.has_traffic = tot.has_traffic
    if not tot.has_traffic:
        return
    s = row.stats
    s.success_count = tot.success_count
    s.failure_count = tot.failure_count
    n = tot.success_count + tot.failure_count
    # Rates are summed per pod (a pod that just started is not diluted by the
    # others' span); the span sent is the one that turns counts into that rate.
    s.window_s = n / tot.request_rate if n and tot.request_rate > 0 else tot.span_s
    p50, p95, p99 = tot.latency_ms()
    s.latency_ms_p50 = math.nan if p50 is None else p50
    s.latency_ms_p95 = math.nan if p95 is None else p95
    s.latency_ms_p99 = math.nan if p99 is None else p99
    h = s.latency
    h.count = tot.latency.count
    h.sum_us = tot.latency.sum_us
    counts = tot.latency.counts
    keys = sorted(counts)
    h.indexes.extend(keys)
    h.counts.extend(map(counts.__getitem__, keys))
    row.tcp.open_connections = tot.open_connections
    row.tcp.read_bytes_rate = tot.read_rate
    row.tcp.write_bytes_rate = tot.write_rate


def summary(req: controller_pb2.StatRequest, store: MeshStore,
            now: float | None = None) -> controller_pb2.StatResponse:
    """The stat summary for a request; BadRequest if it names nothing known."""
    sel = check_selector(req.selector, store, what="resource")
    assert sel is not None
    frm = check_selector(getattr(req, "from"), store, what="--from", required=False)
    to = check_selector(req.to, store, what="--to", required=False)
    window = check_window(req.window_s)
    wall = check_end(req.end_ms, window, store.clock() if now is None else now)
    mono = time.monotonic()
    out = controller_pb2.StatResponse(timestamp_ms=int(wall * 1000))
    for row, pods in rows_of(sel, store):
        wire = out.rows.add()
        resource(row, pods, store, mono, wire.resource)
        # A window that ended earlier holds what every proxy counted then.
        fill_stat_row(wire, row_totals(row, pods, frm, to, store, wall, window,
                                       answering_only=not req.end_ms))
    proxied = store.proxied()
    out.proxies_total = len(proxied)
    out.proxies_reachable = sum(1 for st in proxied if store.reachable(st, mono))
    return out


def list_resources(req: controller_pb2.ListResourcesRequest, store: MeshStore
                   ) -> controller_pb2.ListResourcesResponse:
    """Namespaces, deployments and pods (all three kinds when no type is given)."""
    if req.selector.type == common_pb2.RESOURCE_TYPE_UNSPECIFIED:
        kinds: Iterable[common_pb2.ResourceSelector] = [
            common_pb2.ResourceSelector(type=t, namespace=req.selector.namespace,
                                        name=req.selector.name)
            for t in (NS, DEPLOY, POD)
        ]
        if req.selector.name:
            raise BadRequest("a resource name needs a resource type")
    else:
        kinds = [req.selector]
    mono = time.monotonic()
    out = controller_pb2.ListResourcesResponse()
    for k in kinds:
        sel = check_selector(k, store, what="resource")
        assert sel is not None
        for row, pods in rows_of(sel, store):
            resource(row, pods, store, mono, out.resources.add())
    return out


def history(req: controller_pb2.HistoryRequest, store: MeshStore,
            now: float | None = None) -> controller_pb2.HistoryResponse:
    """Per-step points for each resource the selector names (inbound series)."""
    sel = check_selector(req.selector, store, what="resource")
    assert sel is not None
    window = check_window(req.window_s)
    step = float(req.step_s or 10)
    wall = check_end(req.end_ms, window, store.clock() if now is None else now)
    mono = time.monotonic()
    out = controller_pb2.HistoryResponse()
    for row, pods in rows_of(sel, store):
        series = out.series.add()
        resource(row, pods, store, mono, series.resource)
        bins: dict[float, WindowTotals] = {}
        for st in pods:
            if st.windows is None:
                continue
            _, pts = st.windows.points(wall, window, step, _is_inbound)
            for end, tot in pts:
                b = bins.get(end)
                if b is None:
                    bins[end] = tot
                else:
                    b.merge(tot)
        for end in sorted(bins):
            tot = bins[end]
            p = series.points.add(timestamp_ms=int(end * 1000), rps=tot.request_rate)
            sr = tot.success_rate
            p.success = math.nan if sr is None else sr
            p50, p95, p99 = tot.latency_ms()
            p.latency_ms_p50 = math.nan if p50 is None else p50
            p.latency_ms_p95 = math.nan if p95 is None else p95
            p.latency_ms_p99 = math.nan if p99 is None else p99
    return out
