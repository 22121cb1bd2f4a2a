"""The proxy's admin port: ``GET /metrics`` (Prometheus text), ``/ready``, ``/live``.

The metrics use Linkerd's proxy names and labels, so dashboards and queries
written for Linkerd read them unchanged; :mod:`meshtui.proxy.prom_metrics` writes
them with prometheus-client at scrape time, and is imported at the first scrape:
prometheus-client and what it imports (http.server, email, wsgiref) are about
4.5 MiB of a proxy's resident memory, which a pod nobody scrapes never pays.

The HTTP side is a few lines over asyncio streams: one request per connection,
low rate, every read bounded in size and time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from meshtui.errors import RuntimeFailure
from meshtui.model.histogram import NUM_BUCKETS, bucket_upper
from meshtui.proxy.telemetry import Telemetry

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


def metrics_text(telemetry: Telemetry) -> bytes:
    """The ``/metrics`` body for one telemetry."""
    from meshtui.proxy.prom_metrics import metrics_text as render

    return render(telemetry)


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
            from meshtui.proxy.prom_metrics import CONTENT_TYPE

            return 200, CONTENT_TYPE, metrics_text(self.telemetry)
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
