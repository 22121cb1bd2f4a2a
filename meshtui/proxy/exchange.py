"""One HTTP request and its response, from the client's request head to the end
of the response: routing, the upstream connection, framing on both hops,
back-pressure, telemetry, and the proxy's own error answers.

The HTTP/1.1 codec (:mod:`meshtui.proxy.http1_server`) parses requests and
feeds an :class:`Exchange` its head, body and end; the :class:`~meshtui.proxy.pool.Upstream`
it runs on feeds it the response. Both streams pass through as they arrive:
nothing is buffered whole, and a full socket buffer on one side pauses reading
on the other.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any, Protocol

from meshtui.proxy import http1
from meshtui.proxy.pool import LoopDetected, Upstream
from meshtui.proxy.routing import NoRoute

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.codec import Connection
    from meshtui.proxy.context import ProxyContext

# Body framing of a request on its way upstream.
NO_BODY, LENGTH, CHUNKED = 0, 1, 2

_KEEP_UPGRADE = frozenset({b"upgrade"})
# The usual methods' names as str, decoded once.
_METHODS = {m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH",
                                    b"OPTIONS", b"CONNECT", b"TRACE")}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _failure_reason(exc: BaseException | None) -> str:
    """A short lower-case reason for a failed upstream connection."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by upstream"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if exc is None:
        return "upstream closed the connection"
    return " ".join(str(exc).split()).lower() or type(exc).__name__


class Host(Protocol):
    """What an exchange needs of the HTTP/1 codec that parsed it
    (:class:`~meshtui.proxy.http1_server.Http1Server`)."""

    ctx: ProxyContext
    conn: Connection
    streams: int
    idle_up: Upstream | None

    @property
    def draining(self) -> bool: ...
    def pending_body(self, waiting: bool) -> None: ...
    def take_upstream(self, key: tuple[str, int]) -> Upstream | None: ...
    def keep_upstream(self, up: Upstream) -> None: ...
    def exchange_done(self, ex: Exchange, close: bool, abort: bool) -> None: ...


class Exchange:
    """A request on a downstream connection and the response it gets."""

    # Most fields keep their class-level default for a whole exchange: an instance
    # sets only what differs (creating one per request is on the hot path).
    method = b""
    target = b""
    version = "1.1"
    authority = ""
    path = ""
    keep_alive = True
    body_kind = NO_BODY
    expect_continue = False
    upgrade = False  # Upgrade or CONNECT: opaque after a 101/2xx
    tunnel = False
    req_head: bytes | None = None  # kept: a retry on a fresh connection sends it again
    req_done = False
    pending: list[bytes] | None = None  # body framed for upstream, not yet sent
    # Body read before the request started (and so before tap could say it wants
    # bodies): the same pieces ``pending`` holds, unframed; dropped at the start.
    early: list[bytes] | None = None
    reject: tuple[int, str] | None = None
    started = False
    counted = False  # holds one of the proxy's in-flight slots
    done = False
    obs: Any = None
    dst: tuple[str, int] = ("", 0)
    up: Upstream | None = None
    connect_task: asyncio.Task[None] | None = None
    retried = False
    resp_started = False
    resp_chunked = False
    resp_until_close = False
    resp_close = False
    resp_bytes = 0
    waiting_since = 0.0  # when the response clock started (0: not running)

    def __init__(self, down: Host) -> None:
        self.down = down
        self.conn: Connection = down.conn  # where the response goes
        self.url: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []

    # --- the request, as the downstream parser delivers it ---------------------------

    def request_body(self, data: bytes) -> None:
        if self.done:
            return
        obs = self.obs
        if obs is None:
            if self.down.ctx.telemetry.hub.subscribers:  # someone might want bodies
                if self.early is None:
                    self.early = []
                self.early.append(data)
        elif obs.cap:  # tap asked for bodies: a copy, not a hold
            obs.capture_request(data)
        framed = http1.chunk(data) if self.body_kind == CHUNKED else data
        up = self.up
        if up is not None and self.pending is None and up.transport is not None:
            up.transport.write(framed)
        else:
            if self.pending is None:
                self.pending = []
            self.pending.append(framed)
            if self.started:
                # Not started: the read it came in ends before the request starts
                # (or a request before it holds reading paused).
                self.down.pending_body(True)

    def request_complete(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        self.req_done = True
        if self.done:
            return
        if self.body_kind == CHUNKED:
            self.body_kind = NO_BODY  # the last chunk goes out once, now
            last = http1.last_chunk(trailers)
            up = self.up
            if up is not None and self.pending is None and up.transport is not None:
                up.transport.write(last)
            else:
                if self.pending is None:
                    self.pending = []
                self.pending.append(last)
        if self.up is not None and self.pending is None and not self.resp_started:
            self.waiting_since = self.down.ctx.clock

    # --- starting: route, telemetry, upstream -----------------------------------------

    def start(self) -> None:
        """Called once the request head is complete and every earlier exchange ended."""
        self.started = True
        d = self.down
        ctx = d.ctx
        if self.reject is not None:
            self.fail(*self.reject)
            return
        try:
            connect, self.dst = d.conn.route(self.authority)
        except NoRoute as e:
            self._observe()
            self.fail(e.status, e.reason)
            return
        if not self.authority and self.req_head is not None:
            # HTTP/1.0 without Host: the next hop gets the address it is reached at.
            host = f"{connect[0]}:{connect[1]}".encode("latin-1")
            self.req_head = self.req_head.replace(b"\r\n", b"\r\nhost: " + host + b"\r\n", 1)
        self._observe()
        if ctx.in_flight >= ctx.max_in_flight:
            self.fail(503, f"overloaded: {ctx.in_flight} requests in flight")
            return
        ctx.in_flight += 1
        self.counted = True
        if self.method == b"CONNECT" and d.conn.terminates_connect():
            self._start_connect_tunnel(connect)
            return
        up = d.idle_up
        if up is not None and up.key == connect and not up.closed:
            d.idle_up = None  # the connection the last request used: the usual case
            up.reused = True
        else:
            up = d.take_upstream(connect)
        if up is not None:
            self._attach(up)
        else:
            self.connect_task = ctx.loop.create_task(self._connect(connect))

    def _observe(self) -> None:
        d = self.down
        d.streams += 1
        method = self.method
        c = self.conn
        self.obs = d.ctx.telemetry.request(
            c.direction, c.peer, self.dst, c.conn_id,
            _METHODS.get(method) or method.decode("latin-1"), "http",
            self.authority, self.path, self.headers, d.streams, c.tls_id)
        early, self.early = self.early, None
        if early and self.obs.cap:
            for piece in early:
                self.obs.capture_request(piece)

    async def _open(self, key: tuple[str, int]) -> Upstream | None:
        """A new upstream connection, or None after answering 502/504 for it."""
        ctx = self.down.ctx
        try:
            up = await asyncio.wait_for(ctx.pool.connect(key), ctx.timeouts.connect)
        except TimeoutError:
            self.connect_task = None  # done: fail() must not cancel this very task
            self.fail(504, f"connect timeout after {ctx.timeouts.connect:g}s")
            return None
        except LoopDetected:
            self.connect_task = None
            self.fail(508, "the request would loop back to this proxy")
            return None
        except OSError as e:
            self.connect_task = None
            self.fail(502, _failure_reason(e))
            return None
        self.connect_task = None
        return up

    async def _connect(self, key: tuple[str, int]) -> None:
        up = await self._open(key)
        if up is None:
            return
        if self.done:
            self.down.ctx.pool.release(up)
        else:
            self._attach(up)

    def _attach(self, up: Upstream) -> None:
        self.up = up
        assert self.req_head is not None
        up.send_head(self, self.req_head)
        d = self.down
        if self.conn.write_paused and up.transport is not None:
            up.transport.pause_reading()
        pending = self.pending
        if pending is not None:
            self.pending = None
            assert up.transport is not None
            up.transport.writelines(pending)
            d.pending_body(False)
        if self.req_done and not self.resp_started:
            self.waiting_since = d.ctx.clock

    def _start_connect_tunnel(self, key: tuple[str, int]) -> None:
        """CONNECT to the proxy itself (explicit mode): open the tunnel and say 200."""
        async def run() -> None:
            up = await self._open(key)
            if up is None:
                return
            if self.done:
                up.close()
                return
            self.up = up
            head = b"HTTP/1.1 200 Connection established\r\n\r\n"
            self.resp_started = True
            self.obs.response_start(200, [])
            self.conn.write(head)
            self.tunnel = True
            self.conn.enter_tunnel(up, self, self.dst)

        self.connect_task = self.down.ctx.loop.create_task(run())

    # --- the response, as the upstream parser delivers it -------------------------------

    def response_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                      raw: bytes | None = None) -> None:
        """The upstream's response head; ``raw``: its bytes as received, when known."""
        if self.done:
            return
        d = self.conn
        if status < 200 and status != 101:
            # Interim responses reach HTTP/1.1 clients only; 100 only if asked for.
            if self.version == "1.1" and (status != 100 or self.expect_continue):
                d.write(http1.serialize(b"HTTP/1.1 %d %b" % (status, reason),
                                        http1.end_to_end(headers)))
            return
        self.waiting_since = 0.0
        self.resp_started = True
        if status == 101 or (self.method == b"CONNECT" and status < 300):
            line = b"HTTP/1.1 %d %b" % (status, reason)
            if not self.upgrade:
                self.resp_started = False
                self.fail(502, "upstream switched protocols unasked")
                return
            self.tunnel = True
            self.obs.response_start(status, headers)
            keep = _KEEP_UPGRADE if status == 101 else frozenset()
            out = http1.end_to_end(headers, keep)
            extra = b"connection: upgrade\r\n" if status == 101 else b""
            d.write(http1.serialize(line, out, extra))
            if status != 101 and self.up is not None:
                # A CONNECT's 2xx has no framing: what follows is the tunnel.
                d.enter_tunnel(self.up, self)
            return
        if self.upgrade:
            # Upgrade refused: answer normally, then close (the client may have
            # sent bytes for the new protocol already).
            self.resp_close = True
        head_only = self.method == b"HEAD" or status in (204, 304)
        f = http1.Framing(headers)
        te = f.te
        if head_only:
            pass
        elif te is not None:
            if self.version == "1.1":
                self.resp_chunked = True
            else:
                self.resp_until_close = True  # an HTTP/1.0 client reads to the close
        elif f.length is None:
            self.resp_until_close = True
        if self.resp_until_close or not self.keep_alive or not self.req_done or d.ctx.draining:
            self.resp_close = True
        self.obs.response_start(status, headers, f.grpc_status)
        if raw is not None and f.plain and not self.resp_close and self.version == "1.1" \
                and (te is None or f.chunked_only):
            d.write(raw)  # nothing to change: the head travels on as the upstream sent it
            return
        line = b"HTTP/1.1 %d %b" % (status, reason)
        extra = b""
        if self.resp_chunked:
            extra = b"transfer-encoding: " + (te or b"chunked") + b"\r\n"
        if self.version == "1.1":
            if self.resp_close:
                extra += b"connection: close\r\n"
        elif not self.resp_close:
            extra += b"connection: keep-alive\r\n"
        d.write(http1.serialize(line, http1.end_to_end(headers), extra))

    def response_body(self, data: bytes) -> None:
        if self.done:
            return
        self.resp_bytes += len(data)
        if self.tunnel:
            self.conn.tunnel_data(data)
            return
        if self.obs.cap:
            self.obs.capture_response(data)
        if self.resp_chunked:
            self.conn.write(http1.chunk(data))
        else:
            d = self.conn
            out = d.out
            if out is not None:  # (a closed connection has no batch open)
                out.append(data)  # the usual case, Downstream.write inlined
            else:
                d.write(data)

    def response_complete(self, up: Upstream, trailers: list[tuple[bytes, bytes]] | None,
                          keep: bool) -> None:
        if self.done or self.tunnel:  # a tunnel ends when its connections do
            return
        if self.resp_chunked:
            self.conn.write(http1.last_chunk(trailers))
        self.obs.response_end(self.resp_bytes, trailers)
        self.up = None
        if keep and self.req_done and self.pending is None and not self.resp_until_close:
            self.down.keep_upstream(up)
        else:
            up.close()
        self._finish(self.resp_close)

    def response_upgraded(self, up: Upstream, rest: bytes) -> None:
        """The 101's head is out; both sides now speak the new protocol."""
        if self.done or not self.tunnel:
            up.abort()
            return
        self.conn.enter_tunnel(up, self)
        if rest:
            self.conn.tunnel_data(rest)

    def tunnel_closed(self, relayed_to_client: int) -> None:
        """The upgraded or CONNECT tunnel ended: the response ends with it."""
        if self.done:
            return
        self.resp_bytes += relayed_to_client
        self.obs.response_end(self.resp_bytes, None)
        self._finish(True)

    # --- failures ---------------------------------------------------------------------

    def upstream_error(self, up: Upstream, reason: str) -> None:
        up.abort()
        if not self.done:
            self.up = None
            self.fail(502, reason)

    def upstream_lost(self, up: Upstream, exc: Exception | None) -> None:
        if self.done or up is not self.up:
            return
        self.up = None
        if self.resp_started:
            if self.resp_until_close and exc is None:
                # The close is the end of this response.
                self.obs.response_end(self.resp_bytes, None)
                self._finish(True)
            else:
                self._broken()
            return
        # A pooled connection the upstream closed just as we reused it: try once more
        # on a fresh one when nothing of a body has gone out yet.
        if up.reused and not self.retried and self.body_kind == NO_BODY and self.req_done \
                and not self.tunnel and self.pending is None:
            self.retried = True
            self.connect_task = self.down.ctx.loop.create_task(self._connect(up.key))
            return
        self.fail(502, _failure_reason(exc))

    def timed_out(self) -> None:
        """The response clock ran out before a response head arrived."""
        self._drop_upstream()
        self.fail(504, f"response timeout after {self.down.ctx.timeouts.response:g}s")

    def fail(self, status: int, reason: str) -> None:
        """Answers the client with the proxy's own error response."""
        if self.done:
            return
        self._drop_upstream()
        if self.resp_started:
            self._broken()
            return
        if self.obs is None:
            self._observe()
        # A refused head leaves the parser behind; an unread body cannot be skipped.
        # (A request without a body is whole once its head is: the parser reports
        # its end right after the head, which may be after this answer.)
        whole = self.req_done or (self.body_kind == NO_BODY and not self.upgrade)
        close = (not whole or not self.keep_alive or self.down.draining or status < 500
                 or self.upgrade)
        head_only = self.method == b"HEAD"
        data, headers, body_len = http1.error_response(status, reason, close=close,
                                                       head_only=head_only)
        self.resp_started = True
        self.obs.response_start(status, headers)
        self.conn.write(data)
        self.obs.response_end(0 if head_only else body_len, None)
        self.down.ctx.failures += 1
        self._finish(close)

    def _drop_upstream(self) -> None:
        """Gives up the upstream side: a half-done exchange leaves it unfit for reuse."""
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        if self.up is not None:
            self.up.abort()
            self.up = None

    def _broken(self) -> None:
        """The response broke after its head went out: all the client can be told
        is a cut connection."""
        if self.obs is not None:
            self.obs.reset()
        self._finish(True, abort=True)

    def client_gone(self) -> None:
        """The downstream connection closed under this exchange."""
        if self.done:
            return
        self._drop_upstream()
        if self.obs is not None:
            if self.tunnel:
                self.obs.response_end(self.resp_bytes, None)
            else:
                self.obs.reset()
        self.done = True
        self._release_slot()

    def _release_slot(self) -> None:
        if self.counted:
            self.counted = False
            self.down.ctx.in_flight -= 1

    def _finish(self, close: bool, abort: bool = False) -> None:
        self.done = True
        if self.counted:
            self.counted = False
            self.down.ctx.in_flight -= 1
        self.down.exchange_done(self, close, abort)
