"""The Linkerd-named Prometheus metrics of one proxy, written with prometheus-client.

Imported by the admin endpoint at the first ``GET /metrics`` (see
:mod:`meshtui.proxy.admin`). A prometheus-client Collector reads the
:class:`~meshtui.proxy.telemetry.Telemetry` tables at scrape time: the data path
never calls prometheus-client.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from meshtui.proxy.admin import _LE, _LINKERD_BUCKET
from meshtui.proxy.telemetry import Direction, Telemetry

#: The ``Content-Type`` of the ``/metrics`` body.
CONTENT_TYPE = CONTENT_TYPE_LATEST

# As Linkerd's: `tls="true"` and the peer's identity (the client's inbound, the
# server's outbound) on a mutual-TLS connection, `tls="no_identity"` on a plain one.
TLS_LABELS = ("tls", "client_id", "server_id")
HTTP_LABELS = ("direction", "authority", "namespace", "deployment", "pod",
               "dst_namespace", "dst_deployment", "dst_pod", *TLS_LABELS)
TCP_LABELS = ("direction", "peer", "namespace", "deployment", "pod",
              "dst_namespace", "dst_deployment", "dst_pod", *TLS_LABELS)
_DIRECTION: dict[int, str] = {Direction.INBOUND: "inbound", Direction.OUTBOUND: "outbound"}
# Which end of the proxy a TCP series counts, as Linkerd's `peer` label says: inbound,
# the connections clients make to it; outbound, those it holds to their destinations.
# Linkerd viz's byte-rate queries select on it.
_PEER: dict[int, str] = {Direction.INBOUND: "src", Direction.OUTBOUND: "dst"}


def _tls(direction: int, tls_id: str) -> tuple[str, str, str]:
    if not tls_id:
        return ("no_identity", "", "")
    return ("true", tls_id, "") if direction == Direction.INBOUND else ("true", "", tls_id)


class TelemetryCollector(Collector):
    """Linkerd-named metric families, computed from the telemetry on each collect.

    Series that differ only in what Prometheus does not see (two destination
    addresses of one unknown workload) are summed, so no label set repeats.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        for fam in self._families():
            for i, sample in enumerate(fam.samples):
                if "tls" in sample.labels:
                    # A series names only the identities it has, as Linkerd's do.
                    fam.samples[i] = sample._replace(labels={
                        k: v for k, v in sample.labels.items() if v or k not in TLS_LABELS})
            yield fam

    def _families(self) -> Iterator[Metric]:
        tel = self.telemetry
        ident = tel.identity
        own = (ident.namespace, ident.deployment, ident.pod)
        requests: dict[tuple[str, ...], int] = {}
        responses: dict[tuple[str, ...], int] = {}
        grpc: dict[tuple[str, ...], int] = {}  # the same keys, and the grpc_status
        latency: dict[tuple[str, ...], list[float]] = {}  # le counts, then sum in ms
        for route in tel.routes():
            w = route.dst_wl
            labels: tuple[str, ...] = (
                _DIRECTION.get(route.direction, "unknown"), route.authority, *own,
                w.namespace, w.deployment, w.pod, *_tls(route.direction, route.tls_id))
            requests[labels] = requests.get(labels, 0) + route.requests
            for (status, success), st in list(route.responses.items()):
                code = str(status)
                rkey = (*labels, "success" if success else "failure", code)
                plain = st.count
                for grpc_status, n in list((st.grpc or {}).items()):
                    gkey = (*rkey, str(grpc_status))
                    grpc[gkey] = grpc.get(gkey, 0) + n
                    plain -= n
                if plain:
                    responses[rkey] = responses.get(rkey, 0) + plain
                h = st.latency
                if not h.count:
                    continue
                acc = latency.setdefault((*labels, code), [0.0] * (len(_LE) + 1))
                for i, c in list(h.counts.items()):
                    acc[_LINKERD_BUCKET[i]] += c
                acc[-1] += h.sum_us / 1000

        req_fam = CounterMetricFamily("request", "HTTP requests received or sent.",
                                      labels=HTTP_LABELS)
        for key, n in requests.items():
            req_fam.add_metric(key, n)
        yield req_fam
        resp_fam = CounterMetricFamily(
            "response", "HTTP responses, by classification and status.",
            labels=(*HTTP_LABELS, "classification", "status_code"))
        for key, n in responses.items():
            resp_fam.add_metric(key, n)
        # gRPC responses carry one more label, as Linkerd's do: a sample of its own.
        names = (*HTTP_LABELS, "classification", "status_code", "grpc_status")
        for key, n in grpc.items():
            resp_fam.samples.append(Sample("response_total", dict(zip(names, key, strict=True)),
                                           n, None))
        yield resp_fam
        hist = HistogramMetricFamily(
            "response_latency_ms", "Time from request to response headers, in milliseconds.",
            labels=(*HTTP_LABELS, "status_code"))
        for key, acc in latency.items():
            cumulative: list[tuple[str, float]] = []
            total = 0.0
            for le, in_bucket in zip(_LE, acc, strict=False):
                total += in_bucket
                cumulative.append((le, total))
            hist.add_metric(key, cumulative, acc[-1])
        yield hist
        yield from self._tcp(own)
        yield from self._own_health()
        yield from self._certificate()

    def _tcp(self, own: tuple[str, str, str]) -> Iterator[Metric]:
        sums: dict[tuple[str, ...], list[int]] = {}
        for t in self.telemetry.tcp_series():
            w = t.dst_wl
            labels: tuple[str, ...] = (_DIRECTION.get(t.direction, "unknown"),
                                       _PEER.get(t.direction, ""), *own,
                                       w.namespace, w.deployment, w.pod,
                                       *_tls(t.direction, t.tls_id))
            acc = sums.setdefault(labels, [0, 0, 0, 0])
            acc[0] += t.open_total
            acc[1] += t.close_total
            acc[2] += t.read_bytes
            acc[3] += t.write_bytes
        families: tuple[GaugeMetricFamily | CounterMetricFamily, ...] = (
            GaugeMetricFamily("tcp_open_connections", "TCP connections open now.",
                              labels=TCP_LABELS),
            CounterMetricFamily("tcp_open", "TCP connections accepted.", labels=TCP_LABELS),
            CounterMetricFamily("tcp_close", "TCP connections closed.", labels=TCP_LABELS),
            CounterMetricFamily("tcp_read_bytes", "Bytes read from clients.", labels=TCP_LABELS),
            CounterMetricFamily("tcp_write_bytes", "Bytes written to clients.",
                                labels=TCP_LABELS),
        )
        for labels, (opened, closed, read, written) in sums.items():
            for fam, v in zip(families, (opened - closed, opened, closed, read, written),
                              strict=True):
                fam.add_metric(labels, v)
        yield from families

    def _own_health(self) -> Iterator[Metric]:
        """What the recorder itself lost: tap drops and series past the caps."""
        tel = self.telemetry
        yield GaugeMetricFamily("process_start_time_seconds", "When the proxy started.",
                                value=tel.start_time_ms / 1000)
        yield CounterMetricFamily("meshtui_tap_dropped_events",
                                  "Tap events lost on full subscriber queues.",
                                  value=tel.hub.dropped_total)
        yield GaugeMetricFamily("meshtui_tap_subscribers", "Open tap streams.",
                                value=len(tel.hub.subscribers))
        fam: CounterMetricFamily = CounterMetricFamily("meshtui_series_overflow",
                                  "Requests and connections counted under the '(other)' "
                                  "series because the series cap was reached.",
                                  labels=("kind",))
        fam.add_metric(("request",), tel.overflow_requests)
        fam.add_metric(("tcp",), tel.overflow_connections)
        yield fam
        errors = CounterMetricFamily(
            "meshtui_http2_errors", "HTTP/2 connections closed for a protocol violation or "
            "a flood, by kind.", labels=("kind",))
        for kind, n in sorted(tel.http2_errors.items()):
            errors.add_metric((kind,), n)
        yield errors
        failures = CounterMetricFamily(
            "meshtui_connection_failures", "Connections the proxy refused, closed or could "
            "not carry with no HTTP response to count them by (an opaque connection to a "
            "dead upstream, a loop, the connection cap, an idle or silent connection), "
            "by direction and reason.", labels=("direction", "reason"))
        for (direction, reason), n in sorted(tel.connection_failures.items()):
            failures.add_metric((_DIRECTION.get(direction, "unknown"), reason), n)
        yield failures
        yield CounterMetricFamily(
            "meshtui_http2_untracked_streams", "HTTP/2 streams relayed past a connection's "
            "cap on tracked streams, not counted as requests.", value=tel.untracked_streams)


    def _certificate(self) -> Iterator[Metric]:
        """The proxy's own certificate, under the names Linkerd's proxy documents
        (``identity_cert_refresh_count`` became ``identity_cert_refreshes_total`` with a
        ``result`` label in 2024); nothing when identity is off, as with Linkerd's."""
        held = self.telemetry.held_certificate()
        if held is None:
            return
        yield GaugeMetricFamily(
            "identity_cert_expiration_timestamp_seconds", "When the proxy's current mTLS "
            "identity certificate expires, in seconds since the Unix epoch.",
            value=held.not_after_s)
        yield GaugeMetricFamily(
            "identity_cert_refresh_timestamp_seconds", "When the proxy's current mTLS "
            "identity certificate arrived, in seconds since the Unix epoch.",
            value=held.refreshed_s)
        fam = CounterMetricFamily(
            "identity_cert_refreshes", "Certificates the proxy asked the identity service "
            "for, by result.", labels=("result",))
        fam.add_metric(("ok",), held.refreshes)
        fam.add_metric(("error",), held.refresh_errors)
        yield fam


def metrics_text(telemetry: Telemetry) -> bytes:
    """The ``/metrics`` body for one telemetry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(telemetry))
    return generate_latest(registry)
