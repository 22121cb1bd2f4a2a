"""The proxy's telemetry recorder: counters, latency histograms, TCP totals, tap.

The data path calls :meth:`Telemetry.tcp_open` once per accepted connection and
:meth:`Telemetry.request` once per HTTP request, then reports on the returned
observation objects. That is the hot path: with nobody tapping it costs a couple
of dict lookups, a clock read or two and integer adds; protobuf is built only by
:meth:`Telemetry.scrape` and by tap streams.

Series are keyed as on the wire (``RequestSeries`` / ``ResponseSeries`` /
``TcpSeries`` in ``proxy.proto``): direction, authority and destination address
(from which the destination workload follows). Authorities come from clients and
can be anything, so the number of routes is capped: past the cap a new route is
folded into the ``(other)`` route of its direction and counted in
:attr:`Telemetry.overflow_requests`.
"""

from __future__ import annotations

import enum
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from meshtui import __version__
from meshtui.model.histogram import MAX_US, NUM_BUCKETS, Histogram, bucket_upper
from meshtui.model.inventory import Workload
from meshtui.model.redact import Redactor
from meshtui.model.tap import GRPC_FAILURES, MAX_CAPTURE_BODY
from meshtui.proxy.http1 import ERROR_HEADER, grpc_status_code
from meshtui.proxy.tap_hub import (
    BODY_INFLIGHT_BYTES,
    RESPONSE_END,
    RESPONSE_INIT,
    Subscriber,
    TapHub,
    TapRequest,
)
from meshtui.v1 import common_pb2, proxy_pb2

# response_start's default: look for grpc-status in the headers.
_SCAN = object()
_S = TypeVar("_S")  # a series, summed by _summed
#: The authority (and address) overflowing routes are folded into.
OTHER = "(other)"
#: Longest authority kept as a label; longer ones are cut (tap still shows them whole).
MAX_AUTHORITY = 255
_NO_WORKLOAD = Workload()


class Direction(enum.IntEnum):
    """Which side of the pod a request or connection was seen on (as in common.proto)."""

    INBOUND = 1
    OUTBOUND = 2


@dataclass(frozen=True)
class Identity:
    """The pod this proxy sits next to."""

    namespace: str
    deployment: str
    pod: str
    pod_ip: str = "127.0.0.1"

    @property
    def workload(self) -> Workload:
        return Workload(self.namespace, self.deployment, self.pod)


@dataclass(frozen=True)
class HeldCertificate:
    """The certificate the proxy presents now, in plain numbers: reading it needs no
    ``cryptography``, which a proxy without identity never loads."""

    identity: str  # the DNS name the leaf carries
    not_before_s: float
    not_after_s: float
    refreshed_s: float  # wall clock when it arrived
    refreshes: int  # certificates received since the proxy started
    refresh_errors: int  # requests for one that failed


class Route:
    """Request counts of one (direction, authority, destination) and its responses."""

    __slots__ = ("authority", "direction", "dst_addr", "dst_wl", "requests", "responses",
                 "tls_counts", "tls_id")

    def __init__(self, direction: int, authority: str, dst_addr: str, dst_wl: Workload,
                 tls_id: str = "") -> None:
        self.direction = direction
        #: The peer's identity when the connection was mutual TLS ('' when plain):
        #: the client's for inbound traffic, the server's for outbound.
        self.tls_id = tls_id
        self.authority = authority
        self.dst_addr = dst_addr
        self.dst_wl = dst_wl
        self.requests = 0
        #: (status_code, success) → ResponseStats
        self.responses: dict[tuple[int, bool], ResponseStats] = {}
        #: Only in a scrape's sum of plain and mutual-TLS routes (see _merged_routes):
        #: of each response count, how many went over mutual TLS. None on a live
        #: route, whose responses all went as tls_id says.
        self.tls_counts: dict[tuple[int, bool], int] | None = None


class ResponseStats:
    """Responses of one (status, classification); ``grpc`` counts them by grpc-status
    (None until a gRPC response comes)."""

    __slots__ = ("count", "grpc", "latency")

    def __init__(self) -> None:
        self.count = 0
        self.latency = Histogram()
        self.grpc: dict[int, int] | None = None


class TcpStats:
    """Connection and byte totals of one (direction, destination)."""

    __slots__ = (
        "close_total", "direction", "dst_addr", "dst_wl", "open_total", "read_bytes",
        "tls_id", "write_bytes",
    )

    def __init__(self, direction: int, dst_addr: str, dst_wl: Workload,
                 tls_id: str = "") -> None:
        self.direction = direction
        self.tls_id = tls_id  # as Route.tls_id
        self.dst_addr = dst_addr
        self.dst_wl = dst_wl
        self.open_total = 0
        self.close_total = 0
        self.read_bytes = 0
        self.write_bytes = 0


class TcpObs:
    """One accepted connection. ``read``/``write`` add bytes; ``close`` is idempotent."""

    __slots__ = ("_stats", "closed", "conn_id")

    def __init__(self, stats: TcpStats, conn_id: int) -> None:
        self._stats = stats
        self.closed = False
        #: A process-unique number the data path may use as the tap stream base.
        self.conn_id = conn_id

    def read(self, n: int) -> None:
        """Bytes read from the client side of this proxy connection."""
        self._stats.read_bytes += n

    def write(self, n: int) -> None:
        """Bytes written back to the client side."""
        self._stats.write_bytes += n

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._stats.close_total += 1


class RequestObs:
    """One HTTP request: report its response start, then its end or a reset.

    Calls after the request has ended (a second end, a reset after the end) are
    ignored, so the data path may report defensively.
    """

    __slots__ = (
        "_grpc", "_lost", "_refused", "_route", "_t0", "_t1", "_taking", "_tap", "_tel", "cap",
        "done", "req_body", "req_len", "req_total", "resp_body", "resp_len", "started", "status",
    )

    def __init__(self, tel: Telemetry, route: Route, t0: float) -> None:
        self._tel = tel
        self._route = route
        self._t0 = t0
        self._t1 = 0.0
        self.started = False
        self.status = 0
        self.done = False
        self._tap: TapRequest | None = None
        # Shared empty tuples: no allocation per request when nobody taps.
        self._taking: Sequence[Subscriber] = ()
        self._lost: Sequence[Subscriber] = ()
        self._grpc: int | None = None
        self._refused = False  # the proxy answered itself (400, 431, 502, 504, ...)
        #: Bytes of each body to copy for tap (0: none). The data path tests this
        #: before calling capture_*, so untapped bodies cost one attribute read.
        self.cap = 0
        self.req_total = 0
        self.req_len = self.resp_len = 0
        # The pieces kept of each body (no more than ``cap`` bytes in all).
        self.req_body: list[bytes] | None = None
        self.resp_body: list[bytes] | None = None

    def capture_request(self, data: bytes) -> None:
        """A piece of the request body passed (only called while ``cap``): its first
        bytes are kept, up to ``cap`` in all; nothing is held back. (The lists
        exist whenever ``cap`` is set.)"""
        self.req_total += len(data)
        room = self.cap - self.req_len
        if room > 0:
            self.req_len += _keep(self.req_body, data, room)  # type: ignore[arg-type]

    def capture_response(self, data: bytes) -> None:
        """As :meth:`capture_request`, for the response body (its total is counted
        by the data path already)."""
        room = self.cap - self.resp_len
        if room > 0:
            self.resp_len += _keep(self.resp_body, data, room)  # type: ignore[arg-type]

    def _bodies(self) -> tuple[list[bytes], int, list[bytes]] | None:
        if not self.cap:
            return None
        assert self.req_body is not None and self.resp_body is not None
        return self.req_body, self.req_total, self.resp_body

    def response_start(self, status: int, headers: list[tuple[bytes, bytes]],
                       grpc_status: int | object | None = _SCAN) -> None:
        """The response's status line and headers have arrived; ``grpc_status``: the
        code their ``grpc-status`` field holds (None: none), if the caller found it."""
        if self.done or self.started:
            return
        self.started = True
        self._t1 = self._tel._clock()
        self.status = status
        # The proxy's own answers (http1.error_response) lead with their reason
        # header; a refused or failed request is a failure whatever its status,
        # 400 and 431 included, so that refusals show in the success rate.
        self._refused = bool(headers) and headers[0][0] == ERROR_HEADER
        # A trailers-only gRPC response carries grpc-status in its headers.
        self._grpc = _find_grpc_status(headers) if grpc_status is _SCAN \
            else grpc_status  # type: ignore[assignment]
        if self._lost:
            self._count_lost()
        if self._taking:
            TapHub.emit(self._taking, (
                RESPONSE_INIT, self._wall_us(self._t1), self._tap,
                _us(self._t1 - self._t0), status, headers,
            ))

    def response_end(
        self, response_bytes: int, trailers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """The response body ended; ``grpc-status`` in trailers (or headers) classifies it."""
        if self.done:
            return
        if not self.started:  # an end with no start: count what we have, as a failure
            self.reset(1)
            return
        grpc = self._grpc_status(trailers)
        ok = self.status < 500 and grpc not in GRPC_FAILURES and not self._refused
        stats = self._finish(self.status, ok, True)
        if grpc is not None:
            by_code = stats.grpc
            if by_code is None:
                by_code = stats.grpc = {}
            by_code[grpc] = by_code.get(grpc, 0) + 1
        if self._lost:
            self._count_lost()
        if self._taking:
            now = self._tel._clock()
            TapHub.emit(self._taking, (
                RESPONSE_END, self._wall_us(now), self._tap, _us(now - self._t0),
                _us(now - self._t1), response_bytes, grpc, None, trailers, self._bodies(),
            ))

    def reset(self, error_code: int = 1, response_bytes: int = 0) -> None:
        """The stream broke before it ended (``response_bytes`` of its response had come);
        without a response it counts as status 0."""
        if self.done:
            return
        self._finish(self.status, False, self.started)
        if self._lost:
            self._count_lost()
        if self._taking:
            now = self._tel._clock()
            since_resp = _us(now - self._t1) if self.started else 0
            TapHub.emit(self._taking, (
                RESPONSE_END, self._wall_us(now), self._tap, _us(now - self._t0),
                since_resp, response_bytes, None, error_code, None, self._bodies(),
            ))

    # --- internals ---------------------------------------------------------

    def _finish(self, status: int, success: bool, with_latency: bool) -> ResponseStats:
        self.done = True
        if self.cap:  # its bodies no longer grow: they leave the in-flight budget
            hub = self._tel.hub
            hub.capturing -= 1
            hub.capturing_bytes -= 2 * self.cap
        key = (status, success)
        stats = self._route.responses.get(key)
        if stats is None:
            stats = self._tel._new_response(self._route, key)
        stats.count += 1
        if with_latency:
            us = (self._t1 - self._t0) * 1e6
            h = stats.latency
            if 0.0 <= us < MAX_US:
                i = bisect_left(_UPPERS, us)
                counts = h.counts
                counts[i] = counts.get(i, 0) + 1
                h.count += 1
                h.sum_us += us
            else:
                h.record(us)
        return stats

    def _grpc_status(self, trailers: list[tuple[bytes, bytes]] | None) -> int | None:
        code = _find_grpc_status(trailers) if trailers else None
        if code is None:
            code = self._grpc
        return code

    def _count_lost(self) -> None:
        """Counts this event as lost for those who had no room for its request
        (no event is built for them: a stuck subscriber costs only this)."""
        for sub in self._lost:
            sub.dropped += 1

    def _wall_us(self, t: float) -> int:
        assert self._tap is not None
        return self._tap.wall0_us + _us(t - self._t0)


def _keep(pieces: list[bytes], data: bytes, room: int) -> int:
    """Keeps what fits of ``data`` in ``room`` bytes; how many bytes it kept. A piece
    that fits whole is kept as it is, not copied (bytes are immutable, and exactly
    those bytes are held); a piece cut, or a mutable buffer, is copied."""
    if len(data) <= room and type(data) is bytes:
        pieces.append(data)
        return len(data)
    piece = bytes(data[:room])
    pieces.append(piece)
    return len(piece)


# Upper bounds of the histogram's buckets: bisecting them buckets a latency in C,
# to the very bucket Histogram.record's logarithm picks, in a fraction of its time.
_UPPERS = [bucket_upper(i) for i in range(NUM_BUCKETS)]


def _us(seconds: float) -> int:
    return round(seconds * 1e6) if seconds > 0 else 0


def _find_grpc_status(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The grpc-status value in a header list; 2 (UNKNOWN) when it is unreadable."""
    for name, value in headers:
        if len(name) == 11 and name.lower() == b"grpc-status":
            return grpc_status_code(value)
    return None


class Telemetry:
    """Everything one proxy records, and the tap hub its streams read.

    Args:
        identity: the proxy's own pod.
        resolve: names a peer ``(ip, port)`` for the ``dst_*`` labels (from the
            inventory); None or a falsy result means unknown. Called once per new
            destination, not per request.
        clock: monotonic seconds (latencies, rate limits).
        show_secrets: tap shows credential headers and secret query values instead
            of redacting them (tests only; no command offers it).
        redact: names and globs the tap redacts besides the defaults (``--redact``).
        max_routes: most (direction, authority, destination) series kept; later
            new ones fold into the ``(other)`` route.
        max_tcp: most (direction, destination) TCP series kept, likewise.
        wall: wall-clock seconds, for tap timestamps and the scrape.
    """

    def __init__(
        self,
        identity: Identity,
        resolve: Callable[[str, int], Workload | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        show_secrets: bool = False,
        redact: tuple[str, ...] = (),
        max_capture_body: int = MAX_CAPTURE_BODY,
        max_routes: int = 1_000,
        max_tcp: int = 1_000,
        wall: Callable[[], float] = time.time,
        hub: TapHub | None = None,
    ) -> None:
        self.identity = identity
        self._own = identity.workload
        self._resolve = resolve
        self._clock = clock
        self._wall = wall
        self.max_routes = max_routes
        self.max_tcp = max_tcp
        self.hub = hub if hub is not None else TapHub(
            clock, show_secrets=show_secrets, redactor=Redactor(redact),
            max_capture_body=max_capture_body)
        self.start_time_ms = int(wall() * 1000)
        #: Random per process start: a scraper seeing a new one knows counters restarted.
        self.run_id = os.urandom(8).hex()
        self._routes: dict[tuple[int, str, tuple[str, int], str], Route] = {}
        self._tcp: dict[tuple[int, tuple[str, int], str], TcpStats] = {}
        self._peers: dict[tuple[int, str, int], tuple[str, Workload]] = {}
        self._streams: dict[int, int] = {}
        self._conn_seq = 0
        #: Requests / connections counted under ``(other)`` because the caps were reached.
        self.overflow_requests = 0
        self.overflow_connections = 0
        #: HTTP/2 streams relayed past a connection's cap on tracked streams (not counted
        #: as requests).
        self.untracked_streams = 0
        #: HTTP/2 connections closed for misbehaving, by kind (h2frames.H2Error.kind).
        self.http2_errors: dict[str, int] = {}
        #: Connections refused, closed or not carried with no HTTP answer to count
        #: them by (an opaque relay to a dead upstream, a loop, the connection cap,
        #: a timeout), by (direction, reason).
        self.connection_failures: dict[tuple[int, str], int] = {}
        #: The proxy's own certificate, read at each scrape (None: identity is off).
        self.certificate: Callable[[], HeldCertificate | None] | None = None

    # --- the data path -----------------------------------------------------

    def tcp_open(
        self, direction: Direction, peer: tuple[str, int], dst: tuple[str, int],
        tls_id: str = "",
    ) -> TcpObs:
        """One accepted connection (HTTP or opaque); ``tls_id``: see :attr:`Route.tls_id`."""
        key = (direction, dst, tls_id)
        stats = self._tcp.get(key)
        if stats is None:
            stats = self._new_tcp(key)
        stats.open_total += 1
        self._conn_seq += 1
        return TcpObs(stats, self._conn_seq)

    def request(
        self, direction: Direction, src: tuple[str, int], dst: tuple[str, int], conn_id: int,
        method: str, scheme: str, authority: str, path: str,
        headers: list[tuple[bytes, bytes]], stream: int | None = None, tls_id: str = "",
    ) -> RequestObs:
        """One HTTP request on connection ``conn_id``.

        ``stream`` is the request's number on its connection (1, 2, ...) for tap's
        ``base:stream`` ids; when None the recorder numbers them itself. When
        someone taps, the header list is kept, so do not change it afterwards.
        """
        t0 = self._clock()
        route = self._routes.get((direction, authority, dst, tls_id))
        if route is None:
            route = self._new_route(direction, authority, dst, tls_id)
        route.requests += 1
        if stream is None:
            streams = self._streams
            stream = streams.get(conn_id, 0) + 1
            streams[conn_id] = stream
            if len(streams) > 65_536:  # connections that ended long ago
                del streams[next(iter(streams))]
        obs = RequestObs(self, route, t0)
        hub = self.hub
        if hub.subscribers:
            # (full_gen == gen: all_full() is known to hold without calling it.)
            if hub.full_gen == hub.gen or hub.all_full():
                # Every subscriber is out of room and would lose this request
                # whoever sent it (a stuck reader): count the loss, build nothing.
                lost = hub.lose(direction, method, path, authority)
                if lost:
                    obs._lost = lost
            else:
                self._tap(obs, direction, src, dst, conn_id, stream, method, scheme,
                          authority, path, headers, tls_id)
        return obs

    def count_http2_error(self, kind: str) -> None:
        self.http2_errors[kind] = self.http2_errors.get(kind, 0) + 1

    def count_connection_failure(self, direction: int, reason: str) -> None:
        key = (direction, reason)
        self.connection_failures[key] = self.connection_failures.get(key, 0) + 1

    # --- the read side -----------------------------------------------------

    def scrape(self) -> proxy_pb2.ScrapeResponse:
        """Every counter as it stands: the reply to ``Metrics.Scrape``."""
        ident = self.identity
        out = proxy_pb2.ScrapeResponse(
            proxy=proxy_pb2.ProxyIdentity(
                workload=_wl_pb(self._own), pod_ip=ident.pod_ip, version=__version__,
                start_time_ms=self.start_time_ms, run_id=self.run_id,
            ),
            timestamp_ms=int(self._wall() * 1000),
        )
        held = self.held_certificate()
        if held is not None:
            out.certificate.CopyFrom(proxy_pb2.HeldCertificate(
                identity=held.identity, not_before_ms=int(held.not_before_s * 1000),
                not_after_ms=int(held.not_after_s * 1000), refreshes=held.refreshes,
                refresh_errors=held.refresh_errors))
        for r in _merged_routes(list(self._routes.values())):
            dst = _wl_pb(r.dst_wl)
            out.requests.append(proxy_pb2.RequestSeries(
                direction=_dir(r.direction), authority=r.authority, dst=dst, count=r.requests,
                dst_addr=r.dst_addr,
            ))
            tls_counts = r.tls_counts
            for code, st in list(r.responses.items()):
                status, success = code
                h = st.latency
                pairs = list(h.nonzero())
                # tls says all or none; tls_count carries a mix (see proxy.proto).
                n_tls = st.count if r.tls_id else tls_counts.get(code, 0) if tls_counts else 0
                every = n_tls == st.count
                out.responses.append(proxy_pb2.ResponseSeries(
                    direction=_dir(r.direction), authority=r.authority, dst=dst, status_code=status,
                    success=success, count=st.count, dst_addr=r.dst_addr,
                    tls=every, tls_count=0 if every else n_tls,
                    latency=common_pb2.Histogram(
                        count=h.count, sum_us=h.sum_us, indexes=[i for i, _ in pairs],
                        counts=[c for _, c in pairs],
                    ),
                ))
        for t in _merged_tcp(list(self._tcp.values())):
            out.tcp.append(proxy_pb2.TcpSeries(
                direction=_dir(t.direction), dst=_wl_pb(t.dst_wl), open_total=t.open_total,
                close_total=t.close_total, open_connections=t.open_total - t.close_total,
                read_bytes_total=t.read_bytes, write_bytes_total=t.write_bytes,
                dst_addr=t.dst_addr,
            ))
        return out

    def held_certificate(self) -> HeldCertificate | None:
        """The certificate the proxy holds now (None: identity off, or none yet)."""
        return self.certificate() if self.certificate is not None else None

    def routes(self) -> list[Route]:
        """The request routes (a copy of the list; the objects are live)."""
        return list(self._routes.values())

    def tcp_series(self) -> list[TcpStats]:
        """The TCP series (a copy of the list; the objects are live)."""
        return list(self._tcp.values())

    # --- slow paths: first sight of a series, tapping -------------------------

    def _peer(self, direction: int, addr: tuple[str, int]) -> tuple[str, Workload]:
        """("ip:port", workload) of a destination; inbound traffic is for our own pod."""
        key = (direction, addr[0], addr[1])
        hit = self._peers.get(key)
        if hit is None:
            ip, port = addr
            text = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            if direction == Direction.INBOUND:
                wl = self._own
            else:
                wl = (self._resolve(ip, port) if self._resolve else None) or _NO_WORKLOAD
            if len(self._peers) >= 4 * (self.max_routes + self.max_tcp):
                self._peers.clear()
            hit = self._peers[key] = (text, wl)
        return hit

    def _new_route(self, direction: int, authority: str, dst: tuple[str, int],
                   tls_id: str) -> Route:
        key = (direction, authority, dst, tls_id)
        if len(self._routes) >= self.max_routes:
            self.overflow_requests += 1
            okey = (direction, OTHER, ("", 0), "")
            route = self._routes.get(okey)
            if route is None:
                # The overflow route is the one allowed past the cap (one per direction).
                route = self._routes[okey] = Route(direction, OTHER, OTHER, _NO_WORKLOAD)
            return route
        addr, wl = self._peer(direction, dst)
        label = authority if len(authority) <= MAX_AUTHORITY else authority[:MAX_AUTHORITY]
        route = self._routes[key] = Route(direction, label, addr, wl, tls_id)
        return route

    def _new_response(self, route: Route, key: tuple[int, bool]) -> ResponseStats:
        # Status codes come from upstreams and may be anything from 0 to 999:
        # past a per-route bound they share one "other" code (999).
        if len(route.responses) >= 64:
            key = (999, key[1])
            hit = route.responses.get(key)
            if hit is not None:
                return hit
        stats = route.responses[key] = ResponseStats()
        return stats

    def _new_tcp(self, key: tuple[int, tuple[str, int], str]) -> TcpStats:
        direction, dst, tls_id = key
        if len(self._tcp) >= self.max_tcp:
            self.overflow_connections += 1
            okey = (direction, ("", 0), "")
            stats = self._tcp.get(okey)
            if stats is None:
                stats = self._tcp[okey] = TcpStats(direction, OTHER, _NO_WORKLOAD)
            return stats
        addr, wl = self._peer(direction, dst)
        stats = self._tcp[key] = TcpStats(direction, addr, wl, tls_id)
        return stats

    def _tap(
        self, obs: RequestObs, direction: int, src: tuple[str, int], dst: tuple[str, int],
        conn_id: int, stream: int, method: str, scheme: str, authority: str, path: str,
        headers: list[tuple[bytes, bytes]], tls_id: str,
    ) -> None:
        hub = self.hub
        candidates = hub.candidates(direction, method, path, authority)
        if not candidates:
            return
        if direction == Direction.INBOUND:
            src_wl = self._source(src)
            dst_wl = self._own
        else:
            src_wl = self._own
            dst_wl = self._peer(direction, dst)[1]
        def build() -> TapRequest:
            return TapRequest(direction, src, src_wl, dst, dst_wl, conn_id, stream, method,
                              scheme, authority, path, headers, int(self._wall() * 1e6),
                              tls=bool(tls_id))

        req, taking, losing = self.hub.admit(build, candidates, (src_wl, dst_wl))
        obs._tap = req
        if taking:
            obs._taking = taking
            cap = max(s.capture for s in taking)
            hub = self.hub
            if cap and hub.capturing_bytes + 2 * cap <= BODY_INFLIGHT_BYTES:
                obs.cap = cap
                obs.req_body = []
                obs.resp_body = []
                hub.capturing += 1
                hub.capturing_bytes += 2 * cap
        if losing:
            obs._lost = losing

    def _source(self, src: tuple[str, int]) -> Workload:
        """The workload of an inbound request's client (its port is ephemeral)."""
        if self._resolve is None:
            return _NO_WORKLOAD
        return self._resolve(src[0], src[1]) or _NO_WORKLOAD


def _dir(d: int) -> common_pb2.Direction.ValueType:
    return cast(common_pb2.Direction.ValueType, d)


def _wl_pb(w: Workload) -> common_pb2.Workload:
    return common_pb2.Workload(namespace=w.namespace, deployment=w.deployment, pod=w.pod)


def _merged_routes(routes: list[Route]) -> list[Route]:
    """The routes as the wire keys them (TLS is not in the key): the plain and the
    mutual-TLS series of one destination summed, so that no wire series repeats,
    with how many of each response count went over mutual TLS kept beside."""
    return _summed(routes, lambda r: (r.direction, r.authority, r.dst_addr),
                   _route_sum, _route_add)


def _route_sum(r: Route) -> Route:
    acc = Route(r.direction, r.authority, r.dst_addr, r.dst_wl)
    acc.tls_counts = {}
    return acc


def _route_add(acc: Route, r: Route) -> None:
    acc.requests += r.requests
    for code, st in list(r.responses.items()):
        have = acc.responses.get(code)
        if have is None:
            have = acc.responses[code] = ResponseStats()
        have.count += st.count
        have.latency.merge(st.latency)
        if st.grpc:
            g = have.grpc = have.grpc or {}
            for k, n in st.grpc.items():
                g[k] = g.get(k, 0) + n
    if r.tls_id:
        tls = acc.tls_counts
        assert tls is not None  # a sum (_route_sum), never a live route
        for code, st in list(r.responses.items()):
            tls[code] = tls.get(code, 0) + st.count


def _merged_tcp(series: list[TcpStats]) -> list[TcpStats]:
    """The TCP series as the wire keys them (see :func:`_merged_routes`)."""
    return _summed(series, lambda t: (t.direction, t.dst_addr),
                   lambda t: TcpStats(t.direction, t.dst_addr, t.dst_wl), _tcp_add)


def _summed(items: list[_S], key_of: Callable[[_S], tuple[Any, ...]],
            fresh: Callable[[_S], _S], add: Callable[[_S, _S], None]) -> list[_S]:
    """``items`` with those of one key summed into a new item (the live ones are left
    as they are: they go on counting)."""
    out: dict[tuple[Any, ...], _S] = {}
    copies: set[int] = set()  # the entries of out that are sums, not live items
    for it in items:
        key = key_of(it)
        acc = out.get(key)
        if acc is None:
            out[key] = it
            continue
        if id(acc) not in copies:
            first = acc
            acc = out[key] = fresh(first)
            copies.add(id(acc))
            add(acc, first)
        add(acc, it)
    return list(out.values())


def _tcp_add(acc: TcpStats, t: TcpStats) -> None:
    acc.open_total += t.open_total
    acc.close_total += t.close_total
    acc.read_bytes += t.read_bytes
    acc.write_bytes += t.write_bytes
