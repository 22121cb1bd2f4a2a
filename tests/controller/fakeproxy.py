"""A fake proxy for controller tests: a real grpc.aio server on loopback that
serves ``Metrics.Scrape`` and ``Tap.Observe`` from counters the test controls."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import grpc

from meshtui.model.histogram import Histogram
from meshtui.v1 import common_pb2, proxy_pb2, proxy_pb2_grpc

INBOUND, OUTBOUND = common_pb2.INBOUND, common_pb2.OUTBOUND
Dst = tuple[str, str, str]  # namespace, deployment, pod ("" = the proxy does not know)


@dataclass
class _Resp:
    count: int = 0
    tls: int = 0  # of count, over mutual TLS
    latency: Histogram = field(default_factory=Histogram)


@dataclass
class _Tcp:
    opened: int = 0
    closed: int = 0
    read: int = 0
    write: int = 0


class FakeProxy(proxy_pb2_grpc.MetricsServicer, proxy_pb2_grpc.TapServicer):
    def __init__(self, namespace: str, deployment: str, pod: str, *,
                 started_ago_s: float = 3600.0) -> None:
        self.workload = common_pb2.Workload(namespace=namespace, deployment=deployment, pod=pod)
        self.run_id = uuid.uuid4().hex
        self.start_time_ms = int((time.time() - started_ago_s) * 1000)
        self.requests: dict[tuple, int] = {}
        self.responses: dict[tuple, _Resp] = {}
        self.tcp: dict[tuple, _Tcp] = {}
        self.hang_s = 0.0
        self.scrapes = 0
        self.server: grpc.aio.Server | None = None
        self.port = 0
        # tap
        self.observe_requests: list[proxy_pb2.ObserveRequest] = []
        self.active_observers = 0
        self.cancelled_observers = 0
        self._subscribers: list[asyncio.Queue[proxy_pb2.TapBatch]] = []

    # -- what the test does ------------------------------------------------------

    def record(self, direction: int, dst: Dst, status: int, latency_us: float, n: int = 1,
               *, authority: str = "svc", dst_addr: str = "", tls: bool = False) -> None:
        rk = (direction, authority, dst, dst_addr)
        self.requests[rk] = self.requests.get(rk, 0) + n
        r = self.responses.setdefault((*rk, status, status < 500), _Resp())
        r.count += n
        r.tls += n if tls else 0
        r.latency.record(latency_us, n)

    def record_tcp(self, direction: int, dst: Dst, *, opened: int = 0, closed: int = 0,
                   read: int = 0, write: int = 0, dst_addr: str = "") -> None:
        t = self.tcp.setdefault((direction, dst, dst_addr), _Tcp())
        t.opened += opened
        t.closed += closed
        t.read += read
        t.write += write

    def restart(self) -> None:
        """Counters back to zero under a new run id, as a restarted process."""
        self.run_id = uuid.uuid4().hex
        self.start_time_ms = int(time.time() * 1000)
        self.requests.clear()
        self.responses.clear()
        self.tcp.clear()

    def emit(self, events: list[common_pb2.TapEvent], dropped: int = 0) -> None:
        for q in self._subscribers:
            q.put_nowait(proxy_pb2.TapBatch(events=events, dropped=dropped))

    async def start(self, port: int = 0) -> int:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        proxy_pb2_grpc.add_MetricsServicer_to_server(self, server)
        proxy_pb2_grpc.add_TapServicer_to_server(self, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        self.server = server
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- the services --------------------------------------------------------------

    def scrape_response(self) -> proxy_pb2.ScrapeResponse:
        out = proxy_pb2.ScrapeResponse(timestamp_ms=int(time.time() * 1000))
        out.proxy.workload.CopyFrom(self.workload)
        out.proxy.run_id = self.run_id
        out.proxy.start_time_ms = self.start_time_ms
        out.proxy.pod_ip = "127.0.0.1"
        for (direction, authority, dst, addr), n in self.requests.items():
            out.requests.add(direction=direction, authority=authority, count=n, dst_addr=addr,
                             dst=common_pb2.Workload(namespace=dst[0], deployment=dst[1],
                                                     pod=dst[2]))
        for (direction, authority, dst, addr, status, ok), r in self.responses.items():
            # As a proxy says it: tls when all went over mutual TLS, tls_count for a mix.
            every = r.tls == r.count
            s = out.responses.add(direction=direction, authority=authority, count=r.count,
                                  status_code=status, success=ok, dst_addr=addr, tls=every,
                                  tls_count=0 if every else r.tls,
                                  dst=common_pb2.Workload(namespace=dst[0], deployment=dst[1],
                                                          pod=dst[2]))
            s.latency.count = r.latency.count
            s.latency.sum_us = r.latency.sum_us
            for i, c in r.latency.nonzero():
                s.latency.indexes.append(i)
                s.latency.counts.append(c)
        for (direction, dst, addr), t in self.tcp.items():
            out.tcp.add(direction=direction, open_total=t.opened, close_total=t.closed,
                        open_connections=t.opened - t.closed, read_bytes_total=t.read,
                        write_bytes_total=t.write, dst_addr=addr,
                        dst=common_pb2.Workload(namespace=dst[0], deployment=dst[1], pod=dst[2]))
        return out

    async def Scrape(self, request: proxy_pb2.ScrapeRequest,
                     context: grpc.aio.ServicerContext) -> proxy_pb2.ScrapeResponse:
        self.scrapes += 1
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        return self.scrape_response()

    async def Observe(self, request: proxy_pb2.ObserveRequest,
                      context: grpc.aio.ServicerContext):  # type: ignore[override]
        self.observe_requests.append(request)
        q: asyncio.Queue[proxy_pb2.TapBatch] = asyncio.Queue()
        self._subscribers.append(q)
        self.active_observers += 1
        try:
            while True:
                yield await q.get()
        except asyncio.CancelledError:
            self.cancelled_observers += 1
            raise
        finally:
            self.active_observers -= 1
            self._subscribers.remove(q)


def request_events(base: int, stream: int, *, src: tuple[str, int], dst: tuple[str, int],
                   direction: int = INBOUND, status: int = 200, path: str = "/",
                   dst_workload: Dst | None = None) -> list[common_pb2.TapEvent]:
    """The three events of one request's life, as a proxy would stream them."""
    def ev() -> common_pb2.TapEvent:
        e = common_pb2.TapEvent(proxy_direction=direction, timestamp_us=int(time.time() * 1e6))
        e.id.base, e.id.stream = base, stream
        e.source.ip, e.source.port = src
        e.destination.ip, e.destination.port = dst
        if dst_workload is not None:
            w = e.destination.workload
            w.namespace, w.deployment, w.pod = dst_workload
        return e

    a, b, c = ev(), ev(), ev()
    a.request_init.method = "GET"
    a.request_init.path = path
    a.request_init.authority = "svc"
    b.response_init.http_status = status
    b.response_init.since_request_init_us = 1000
    c.response_end.since_request_init_us = 1500
    c.response_end.response_bytes = 10
    return [a, b, c]
