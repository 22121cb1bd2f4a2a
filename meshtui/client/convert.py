"""Wire messages → model types, and model selectors → wire selectors.

Every string that came from traffic (paths, authorities, headers) or from
the inventory (names) is cleaned here, once, on its way into the client.
What the proxy read off a request (method, authority, path, header names)
travels as one character per byte and is read back as UTF-8 (clean_http).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from meshtui.model.edges import EdgeRow
from meshtui.model.histogram import Histogram
from meshtui.model.inventory import Workload
from meshtui.model.redact import REDACTED_BYTES, active
from meshtui.model.sanitize import clean, clean_bytes, clean_http
from meshtui.model.stats import StatRow
from meshtui.model.tap import (
    MAX_CAPTURE_BODY,
    CapturedBody,
    Direction,
    Endpoint,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    StreamId,
    TapEvent,
)
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


def stat_row(row: controller_pb2.StatRow, *, histogram: bool = False) -> StatRow:
    """One wire row; with ``histogram``, the window's merged latency histogram too
    (only when asked: ten thousand rows a second need not pay for it)."""
    res = row.resource
    traffic = row.has_traffic
    st = row.stats
    total = st.success_count + st.failure_count
    window = st.window_s or 0.0
    has_requests = traffic and total > 0 and window > 0
    namespace, name, owner = clean(res.namespace), clean(res.name), clean(res.deployment)
    return StatRow(
        kind=KIND_NAMES.get(res.type, "pod"),
        namespace=namespace,
        name=name,
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
        owner=owner,
        latency=(Histogram.from_sparse(st.latency.indexes, st.latency.counts, st.latency.sum_us)
                 if histogram and has_requests else None),
        # What the controller knows them by, when cleaning changed them: its queries.
        raw_namespace=_raw(res.namespace, namespace), raw_name=_raw(res.name, name),
        raw_owner=_raw(res.deployment, owner),
        missing=tuple(clean(p) for p in res.missing_pods),
    )


def _raw(raw: str, shown: str) -> str | None:
    return None if raw == shown else raw


# ---- tap -------------------------------------------------------------------------


def _workload(w: common_pb2.Workload) -> Workload:
    return Workload(clean(w.namespace), clean(w.deployment), clean(w.pod))


# A tap stream names the same few endpoints over and over: converting (and
# cleaning) each once keeps tap at tens of thousands of events a second. The
# key is the endpoint's wire form, cheaper to read than its five fields.
_ENDPOINTS: dict[bytes, Endpoint] = {}


def endpoint(e: common_pb2.Endpoint) -> Endpoint:
    """A wire endpoint as the model's, cleaned; the same few are converted once."""
    key = e.SerializeToString()
    hit = _ENDPOINTS.get(key)
    if hit is None:
        if len(_ENDPOINTS) > 50_000:  # ephemeral ports: keep it bounded
            _ENDPOINTS.clear()
        hit = _ENDPOINTS[key] = Endpoint(clean(e.ip), e.port, _workload(e.workload))
    return hit


def step_header_values(ev: common_pb2.TapEvent, name: str) -> list[str]:
    """The values of the headers (or trailers) called ``name`` (lower case) one wire step
    carries, cleaned as :func:`tap_event` cleans them; only those values are decoded (a filter
    on one header reads every step, and most of a step's headers are other names)."""
    kind = ev.WhichOneof("event")
    if kind == "request_init":
        hs = ev.request_init.headers
    elif kind == "response_init":
        hs = ev.response_init.headers
    elif kind == "response_end":
        hs = ev.response_end.trailers
    else:
        return []
    if not hs:
        return []
    return [v for _, v in _headers([h for h in hs if _lower_name(h.name) == name])]


@functools.lru_cache(maxsize=4096)
def _lower_name(raw: str) -> str:
    """A header's name as a filter compares it; names repeat, so each is cleaned once."""
    return clean_http(raw).lower()


def _headers(hs: Sequence[common_pb2.Header]) -> tuple[tuple[str, str], ...]:
    if not hs:
        return ()
    # Redacted again here, whatever the proxy did: an older or foreign proxy may not.
    value = active().value
    return tuple((clean_http(h.name), clean_bytes(value(h.name, h.value, REDACTED_BYTES)))
                 for h in hs)


def init_text(r: common_pb2.RequestInit, field: str) -> str:
    """One text field of a wire request start, cleaned, and for the path and the
    authority redacted (secret query values, userinfo) as :func:`tap_event` does."""
    text = clean_http(getattr(r, field))
    if field == "path":
        return active().path(text)
    if field == "authority":
        return active().authority(text)
    return text


DIRECTIONS = {common_pb2.INBOUND: Direction.INBOUND, common_pb2.OUTBOUND: Direction.OUTBOUND}


def tap_event(ev: common_pb2.TapEvent) -> TapEvent | None:
    """One wire event as the model's; None for an event of a kind this client does not know."""
    kind = ev.WhichOneof("event")
    src = endpoint(ev.source)
    dst = endpoint(ev.destination)
    direction = DIRECTIONS.get(ev.proxy_direction, Direction.UNKNOWN)
    sid = ev.id
    stream = StreamId(sid.base, sid.stream)
    ts = ev.timestamp_us
    tls = ev.tls
    if kind == "request_init":
        r = ev.request_init
        return RequestInit(source=src, destination=dst, direction=direction, stream=stream,
                           timestamp_us=ts, tls=tls, method=clean_http(r.method),
                           scheme=clean_http(r.scheme), authority=init_text(r, "authority"),
                           path=init_text(r, "path"), headers=_headers(r.headers))
    if kind == "response_init":
        s = ev.response_init
        return ResponseInit(source=src, destination=dst, direction=direction, stream=stream,
                            timestamp_us=ts, tls=tls, status=s.http_status,
                            latency_us=s.since_request_init_us, headers=_headers(s.headers))
    if kind == "response_end":
        e = ev.response_end
        eos = e.WhichOneof("eos")
        return ResponseEnd(
            source=src, destination=dst, direction=direction, stream=stream, timestamp_us=ts,
            tls=tls, since_request_us=e.since_request_init_us,
            duration_us=e.since_response_init_us, response_bytes=e.response_bytes,
            grpc_status=e.grpc_status_code if eos == "grpc_status_code" else None,
            reset_code=e.reset_error_code if eos == "reset_error_code" else None,
            trailers=_headers(e.trailers),
            request_body=_body(e, "request_body"), response_body=_body(e, "response_body"))
    return None


def _body(end: Any, name: str) -> CapturedBody | None:
    """A captured body of a wire response end (raw bytes: shown only escaped)."""
    if not end.HasField(name):
        return None
    b = getattr(end, name)
    # Never more than the most anyone may ask for, whatever a proxy sends.
    limit = min(b.limit, MAX_CAPTURE_BODY)
    data = bytes(b.data[:limit])
    return CapturedBody(data, b.truncated or len(b.data) > limit, limit)


# ---- edges -----------------------------------------------------------------------


def edge_row(edge: controller_pb2.Edge) -> EdgeRow:
    """One wire edge, its names cleaned for display and its figures as rates."""
    st = edge.stats
    total = st.success_count + st.failure_count
    window = st.window_s or 0.0
    has = total > 0 and window > 0
    return EdgeRow(
        kind=KIND_NAMES.get(edge.src.type, "pod"),
        src_namespace=clean(edge.src.namespace), src=clean(edge.src.name),
        dst_namespace=clean(edge.dst.namespace), dst=clean(edge.dst.name),
        secured=edge.tls,
        success=(st.success_count / total) if has else None,
        rps=(total / window) if has else None,
        p50_ms=_nan_none(st.latency_ms_p50) if has else None,
        p95_ms=_nan_none(st.latency_ms_p95) if has else None,
        p99_ms=_nan_none(st.latency_ms_p99) if has else None,
    )
