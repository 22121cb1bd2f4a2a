"""The proxy's admin port: ``GET /metrics`` (Prometheus text), ``/ready``, ``/live``.

The metrics use Linkerd's proxy names and labels, so dashboards and queries
written for Linkerd read them unchanged. They are written by a prometheus-client
Collector that reads the :class:`~meshtui.proxy.telemetry.Telemetry` tables at
scrape time: the data path never calls prometheus-client.

The HTTP side is a few lines over asyncio streams: one request per connection,
low rate, every read bounded in size and time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from meshtui.errors import RuntimeFailure
from meshtui.model.histogram import NUM_BUCKETS, bucket_upper
from meshtui.proxy.telemetry import Direction, Telemetry

#: Linkerd's response_latency_ms bucket bounds, in milliseconds.
LATENCY_BOUNDS_MS = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)
_LE = [str(b) for b in LATENCY_BOUNDS_MS] + ["+Inf"]


def _bound_of_each_log_bucket() -> list[int]:
    """For every log bucket of the model's histogram, the Linkerd bucket it falls in.

    A log bucket goes, whole, to the first bound its lower edge is below: the
    log bucket holding a bound's value counts toward that bound. So ``le="B"``
    counts every observation at or below B exactly, plus those that shared a log
    bucket with B, which lie less than one log bucket (under 2 %) above it: the
    10 ms bucket may hold a 10.1 ms response, never an 11 ms one, and never
    misses a 9.9 ms one.
    """
    out = []
    k = 0
    for i in range(NUM_BUCKETS):
        lower_ms = bucket_upper(i - 1) / 1000 if i > 0 else 0.0
        while k < len(LATENCY_BOUNDS_MS) and lower_ms >= LATENCY_BOUNDS_MS[k]:
            k += 1
        out.append(k)  # len(LATENCY_BOUNDS_MS) stands for +Inf
    return out


_LINKERD_BUCKET = _bound_of_each_log_bucket()

HTTP_LABELS = ("direction", "authority", "namespace", "deployment", "pod",
               "dst_namespace", "dst_deployment", "dst_pod")
TCP_LABELS = ("direction", "namespace", "deployment", "pod",
              "dst_namespace", "dst_deployment", "dst_pod")
_DIRECTION: dict[int, str] = {Direction.INBOUND: "inbound", Direction.OUTBOUND: "outbound"}


class TelemetryCollector(Collector):
    """Linkerd-named metric families, computed from the telemetry on each collect.

    Series that differ only in what Prometheus does not see (two destination
    addresses of one unknown workload) are summed, so no label set repeats.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        tel = self.telemetry
        ident = tel.identity
        own = (ident.namespace, ident.deployment, ident.pod)
        requests: dict[tuple[str, ...], int] = {}
        responses: dict[tuple[str, ...], int] = {}
        latency: dict[tuple[str, ...], list[float]] = {}  # le counts, then sum in ms
        for route in tel.routes():
            w = route.dst_wl
            labels: tuple[str, ...] = (
                _DIRECTION.get(route.direction, "unknown"), route.authority, *own,
                w.namespace, w.deployment, w.pod)
            requests[labels] = requests.get(labels, 0) + route.requests
            for (status, success), st in list(route.responses.items()):
                code = str(status)
                rkey = (*labels, "success" if success else "failure", code)
                responses[rkey] = responses.get(rkey, 0) + st.count
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

    def _tcp(self, own: tuple[str, str, str]) -> Iterator[Metric]:
        sums: dict[tuple[str, ...], list[int]] = {}
        for t in self.telemetry.tcp_series():
            w = t.dst_wl
            labels: tuple[str, ...] = (_DIRECTION.get(t.direction, "unknown"), *own,
                                       w.namespace, w.deployment, w.pod)
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


def metrics_text(telemetry: Telemetry) -> bytes:
    """The ``/metrics`` body for one telemetry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(telemetry))
    return generate_latest(registry)


class AdminServer:
    """The running admin endpoint; :meth:`close` stops it."""

    #: Most bytes of a request head; the admin port takes no bodies.
    MAX_HEAD = 8192
    #: Seconds a client may take to send its request head.
    HEAD_TIMEOUT = 5.0

    def __init__(self, telemetry: Telemetry, ready: Callable[[], bool]) -> None:
        self.telemetry = telemetry
        self.ready = ready
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _start(self, host: str, port: int) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, host, port, limit=self.MAX_HEAD)
        except OSError as e:
            raise RuntimeFailure(
                f"cannot listen on {host}:{port} for the admin endpoint: {e.strerror or e}"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stops listening (idempotent); requests in progress finish."""
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    def respond(self, method: str, target: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, metrics_text(self.telemetry)
        if path == "/live":
            return 200, "text/plain", b"live\n"
        if path == "/ready":
            try:
                ok = bool(self.ready())
            except Exception:  # a broken readiness check means not ready, not a crash
                ok = False
            return (200, "text/plain", b"ready\n") if ok else (503, "text/plain", b"not ready\n")
        return 404, "text/plain", b"not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.HEAD_TIMEOUT)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                status, ctype, body = 400, "text/plain", b"bad request\n"
                method = "GET"
            else:
                method = parts[0]
                status, ctype, body = self.respond(method, parts[1])
            reason = _REASONS.get(status, "")
            out = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(out if method == "HEAD" else out + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError):
            pass  # the client went away or sent nonsense: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


async def start_admin(
    telemetry: Telemetry, host: str, port: int, ready: Callable[[], bool]
) -> AdminServer:
    """Starts the admin endpoint on ``host:port`` (0: any free port; see ``.port``).

    ``ready()`` answers ``/ready``: 200 when true, 503 otherwise. Raises
    RuntimeFailure (one line) when the address cannot be bound.
    """
    server = AdminServer(telemetry, ready)
    await server._start(host, port)
    return server
