"""One accepted connection: protocol detection, the HTTP/1 server side, and
opaque relaying.

A connection starts in detection. If its first line is an HTTP/1 request line
it is parsed as HTTP (requests become :class:`~meshtui.proxy.exchange.Exchange`
objects, answered in order); otherwise — or if the client says nothing within
the detect timeout, as clients of server-speaks-first protocols do — its bytes
are relayed unparsed. An upgraded request (101) or a CONNECT turns the
connection into such a tunnel too.

Reading from the client is paused for as long as any reason holds (a pipelined
request waiting its turn, body bytes waiting for an upstream connection, a full
upstream socket buffer), so what the proxy holds per connection is bounded by
one socket read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

import httptools

from meshtui.proxy import http1
from meshtui.proxy.exchange import CHUNKED, LENGTH, NO_BODY, Exchange
from meshtui.proxy.origdst import original_dst
from meshtui.proxy.pool import Upstream, open_upstream, request_head
from meshtui.proxy.routing import NoRoute

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.listeners import Listener

# Connection states.
DETECT, HTTP, UPGRADING, CONNECTING, TUNNEL, STOPPED, CLOSED = range(7)

# Reasons reading from the client is paused (bits).
R_PIPELINE, R_PENDING, R_UPSTREAM, R_WAIT = 1, 2, 4, 8

_UNKNOWN: tuple[str, int] = ("", 0)


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; the reason is kept aside."""


class _Unopened:
    """Counts a connection's bytes until its destination (and TCP series) is known."""

    __slots__ = ("rd", "wr")

    def __init__(self) -> None:
        self.rd = 0
        self.wr = 0

    def read(self, n: int) -> None:
        self.rd += n

    def write(self, n: int) -> None:
        self.wr += n

    def close(self) -> None:
        pass


class Downstream(asyncio.Protocol):
    """The proxy's side of one client connection."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.ctx = listener.ctx
        self.direction = listener.direction
        self.transport: Any = None
        self.peer: tuple[str, int] = _UNKNOWN
        self.orig: tuple[str, int] | None = None
        self.conn_id = 0
        self.streams = 0  # requests seen on this connection: tap's stream numbers
        self.tcp: Any = _Unopened()
        self.state = DETECT
        self.buf = bytearray()
        self.since = 0.0  # connection start, then the last time it became idle
        self.parser: Any = None
        self.cur: Exchange | None = None  # the request being parsed
        self.queue: deque[Exchange] = deque()  # requests not yet answered, oldest first
        self.in_head = False
        self.head_since = 0.0
        self.head_bytes = 0
        self.url_len = 0
        self.hdr_n = 0
        self.hdr_size = 0
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.rejected: tuple[int, str] | None = None
        self.paused = 0
        self.write_paused = False
        self.client_eof = False
        self.upstream_eof = False
        self.tunnel_up: Upstream | None = None
        self.tunnel_ex: Exchange | None = None
        self.tunnel_out = 0
        self.out: list[bytes] | None = None  # writes held by an open batch
        self._raw: bytes | None = None  # the read a request head starts at, if at its start
        self._route: tuple[tuple[str, int], tuple[str, int]] | None = None
        self.idle_up: Upstream | None = None  # kept from the last request for the next

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        ctx = self.ctx
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else _UNKNOWN
        if self.listener.transparent:
            self.orig = original_dst(transport.get_extra_info("socket"))
        self.since = ctx.clock
        ctx.conns.add(self)
        dst = self._known_dst()
        if dst is not None:
            self._open_tcp(dst)
        if ctx.draining:
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.tcp.read(len(data))
        st = self.state
        if st == HTTP:
            self._feed(data)
        elif st == TUNNEL:
            up = self.tunnel_up
            if up is not None and up.transport is not None:
                up.transport.write(data)
        elif st == DETECT:
            self.buf += data
            self._detect(False)
        elif st in (UPGRADING, CONNECTING):
            # Early bytes for the tunnel: held (reading is paused) until it opens.
            self.buf += data
            self._pause(R_WAIT)
        # STOPPED: the request was refused; what follows is discarded.

    def eof_received(self) -> bool:
        self.client_eof = True
        st = self.state
        if st == TUNNEL:
            up = self.tunnel_up
            if up is not None and up.transport is not None and up.transport.can_write_eof():
                up.transport.write_eof()
            if self.upstream_eof:
                self._close()
            return True
        if st == DETECT:
            self._detect(True)
            return True
        # Answer what was asked, then close.
        return st == CONNECTING or (st in (HTTP, UPGRADING, STOPPED) and bool(self.queue))

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self.ctx.conns.discard(self)
        # The parser holds this protocol's bound methods: a reference cycle that,
        # left in place, only the cyclic collector frees, and a long-lived
        # connection's cycle is promoted to a generation it collects almost never.
        self.parser = None
        if self.idle_up is not None:
            self.ctx.pool.release(self.idle_up)
            self.idle_up = None
        for ex in self.queue:
            ex.client_gone()
        self.queue.clear()
        up = self.tunnel_up
        if up is not None:
            self.tunnel_up = None
            up.close()
        tex = self.tunnel_ex
        if tex is not None:
            self.tunnel_ex = None
            tex.tunnel_closed(self.tunnel_out)
        if isinstance(self.tcp, _Unopened):
            self._open_tcp(_UNKNOWN)
        self.tcp.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        up = self._active_upstream()
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        up = self._active_upstream()
        if up is not None and up.transport is not None:
            up.transport.resume_reading()

    # --- what exchanges and upstreams call --------------------------------------------

    def write(self, data: bytes) -> None:
        """Bytes to the client, counted (held while a batch is open)."""
        if self.state != CLOSED:
            out = self.out
            if out is not None:
                out.append(data)  # counted as it leaves, in flush()
            else:
                self.transport.write(data)
                self.tcp.write(len(data))

    def batch(self) -> bool:
        """Holds writes until :meth:`flush`: a response's head and body that arrived in
        one read leave in one write (one syscall, one segment). False if a batch is
        already open (its opener flushes)."""
        if self.out is not None:
            return False
        self.out = []
        return True

    def flush(self) -> None:
        out = self.out
        self.out = None
        if out and self.state != CLOSED:
            data = out[0] if len(out) == 1 else b"".join(out)
            self.transport.write(data)
            self.tcp.write(len(data))

    @property
    def draining(self) -> bool:
        return self.ctx.draining

    def upstream_paused(self, paused: bool) -> None:
        """The upstream's socket buffer filled up (or drained)."""
        if paused:
            self._pause(R_UPSTREAM)
        else:
            self._resume(R_UPSTREAM)

    def pending_body(self, waiting: bool) -> None:
        """Body bytes wait for an upstream connection: read no more until it is there."""
        if waiting:
            self._pause(R_PENDING)
        else:
            self._resume(R_PENDING)

    def route(self, ex: Exchange) -> tuple[tuple[str, int], tuple[str, int]]:
        """(connect to, destination) for a request; NoRoute if there is none."""
        route = self._route
        if route is not None:
            return route
        router = self.listener.router
        if self.listener.inbound:
            route = router.inbound(self.orig)
        else:
            route = router.outbound(self.orig, ex.authority)
        if isinstance(self.tcp, _Unopened):
            self._open_tcp(route[1])
        if self.listener.inbound or self.orig is not None:
            self._route = route  # the same for every request on this connection
        return route

    def take_upstream(self, key: tuple[str, int]) -> Upstream | None:
        """A ready upstream connection to ``key``: the one this connection's last
        request used if it goes there too, else one from the pool."""
        up = self.idle_up
        if up is not None:
            self.idle_up = None
            if up.key == key and not up.closed:
                up.reused = True  # the upstream may have closed it meanwhile: retry then
                return up
            self.ctx.pool.release(up)
        return self.ctx.pool.acquire(key)

    def keep_upstream(self, up: Upstream) -> None:
        """Holds a reusable upstream for this connection's next request."""
        prev = self.idle_up
        if prev is not None:
            self.ctx.pool.release(prev)
        if self.state == CLOSED:
            self.ctx.pool.release(up)
        else:
            up.ex = None
            self.idle_up = up

    def terminates_connect(self) -> bool:
        """A CONNECT is the proxy's to carry out only when nobody else is asked: an
        outbound request that was not redirected (explicit mode)."""
        return not self.listener.inbound and self.orig is None

    def exchange_done(self, ex: Exchange, close: bool, abort: bool) -> None:
        """An exchange's response is out: on to the next request, or close."""
        q = self.queue
        if q and q[0] is ex:
            q.popleft()
        elif ex in q:
            q.remove(ex)
        if self.state == CLOSED:
            return
        if abort:
            self.state = CLOSED
            self.out = None
            self.transport.abort()
            return
        if close or self.ctx.draining or (self.client_eof and not q):
            self._close()
            return
        self.since = self.ctx.clock
        if self.paused & R_PIPELINE and len(q) <= 1:
            self._resume(R_PIPELINE)
        if q:
            nxt = q[0]
            if not nxt.started and (nxt.req_head is not None or nxt.reject is not None):
                nxt.start()
        elif self.state == STOPPED:
            self._close()

    def enter_tunnel(self, up: Upstream) -> None:
        """From here on bytes pass through unparsed, both ways."""
        up.start_tunnel(self)
        self.state = TUNNEL
        self.tunnel_up = up
        self.tunnel_ex = self.queue[0] if self.queue else None
        if self.buf and up.transport is not None:
            up.transport.write(bytes(self.buf))
        self.buf = bytearray()
        if self.write_paused and up.transport is not None:
            up.transport.pause_reading()
        if self.client_eof and up.transport is not None and up.transport.can_write_eof():
            up.transport.write_eof()
        self.paused &= R_UPSTREAM
        self._apply_pause()

    def tunnel_data(self, data: bytes) -> None:
        self.write(data)
        self.tunnel_out += len(data)

    def tunnel_eof(self) -> None:
        self.upstream_eof = True
        if self.state == CLOSED:
            return
        if self.client_eof:
            self._close()
        elif self.transport.can_write_eof():
            self.flush()
            self.transport.write_eof()

    def tunnel_lost(self) -> None:
        self.tunnel_up = None
        self._close()  # after what is buffered has gone out

    def tick(self, now: float) -> None:
        """The sweeper's call: enforce the detect, header-read, idle and response timeouts."""
        st = self.state
        t = self.ctx.timeouts
        if st == HTTP:
            if self.in_head:
                if now - self.head_since > t.header_read:
                    self._stop(408, f"request head not received within {t.header_read:g}s")
            elif not self.queue:
                if now - self.since > t.idle:
                    self._close()
            else:
                ex = self.queue[0]
                if ex.waiting_since and now - ex.waiting_since > t.response:
                    ex.timed_out()
        elif st == DETECT and now - self.since > t.detect:
            self._detect(True)

    def drain(self) -> None:
        """Shutting down: close now if nothing is under way; otherwise after it."""
        if self.state in (DETECT, HTTP) and not self.queue and not self.in_head:
            self._close()

    # --- detection and opaque relaying --------------------------------------------

    def _known_dst(self) -> tuple[str, int] | None:
        lst = self.listener
        try:
            if lst.inbound:
                return lst.router.inbound(self.orig)[1]
        except NoRoute:
            return None
        return self.orig

    def _open_tcp(self, dst: tuple[str, int]) -> None:
        prev = self.tcp
        self.tcp = self.ctx.telemetry.tcp_open(self.direction, self.peer, dst)
        self.conn_id = getattr(self.tcp, "conn_id", 0) or self.ctx.next_conn_id()
        if prev.rd:
            self.tcp.read(prev.rd)
        if prev.wr:
            self.tcp.write(prev.wr)

    def _detect(self, timed_out: bool) -> None:
        kind = http1.detect(self.buf, timed_out=timed_out)
        if kind == http1.NEED_MORE:
            return
        if kind == http1.HTTP:
            data = bytes(self.buf)
            self.buf = bytearray()
            self.state = HTTP
            self.parser = httptools.HttpRequestParser(self)
            if data:
                self._feed(data)
            return
        self._start_opaque()

    def _start_opaque(self) -> None:
        self.state = CONNECTING
        self._pause(R_WAIT)
        lst = self.listener
        try:
            if lst.inbound:
                connect = lst.router.inbound(self.orig)[0]
            else:
                connect = lst.router.outbound(self.orig, None)[0]
        except NoRoute:
            self.ctx.failures += 1
            self._close()
            return
        self.ctx.loop.create_task(self._open_tunnel(connect))

    async def _open_tunnel(self, key: tuple[str, int]) -> None:
        ctx = self.ctx
        try:
            up = await asyncio.wait_for(open_upstream(key, None, ctx.pool.mark, ctx.pool.source_ip),
                                        ctx.timeouts.connect)
        except (OSError, TimeoutError):
            ctx.failures += 1
            self._close()
            return
        if self.state == CLOSED:
            up.close()
            return
        self.enter_tunnel(up)

    # --- HTTP: parsing --------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            self._raw = None
        elif self.cur is None and data[:1] not in (b"\r", b"\n"):
            self._raw = data  # a request starts right here: its head may pass as is
        else:
            self._raw = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            self._upgrading(data[e.args[0]:])
            return
        except httptools.HttpParserError as e:
            if self.state == HTTP:
                reason = self.rejected or (400, f"malformed request: {e}")
                self._stop(*reason)
            return
        if self.in_head and self.head_bytes > http1.MAX_REQUEST_LINE + http1.MAX_HEADER_BYTES:
            if self.hdr_n == 0 and not self.url_len <= http1.MAX_REQUEST_LINE:
                self._stop(414, "request line longer than 8 KiB")
            else:
                self._stop(431, "request head larger than 60 KiB")

    def _reject(self, status: int, reason: str) -> None:
        self.rejected = (status, reason)
        raise _Reject(reason)

    def on_message_begin(self) -> None:
        ex = Exchange(self)
        self.cur = ex
        q = self.queue
        q.append(ex)
        self.in_head = True
        self.head_since = self.ctx.clock
        self.head_bytes = 0
        self.url_len = self.hdr_n = self.hdr_size = 0
        if len(q) > 1:
            self._pause(R_PIPELINE)

    def on_url(self, url: bytes) -> None:
        assert self.cur is not None
        self.cur.url.append(url)
        self.url_len += len(url)
        if self.url_len > http1.MAX_REQUEST_LINE:
            self._reject(414, "request line longer than 8 KiB")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.hdr_n += 1
        self.hdr_size += len(name) + len(value) + 4
        if self.hdr_n > http1.MAX_HEADERS:
            self._reject(431, f"more than {http1.MAX_HEADERS} request headers"
                         if self.in_head else "too many trailer fields")
        if self.hdr_size > http1.MAX_HEADER_BYTES:
            self._reject(431, "request headers larger than 60 KiB")
        if self.in_head:
            assert self.cur is not None
            self.cur.headers.append((name, value))
        else:
            if self.trailers is None:
                self.trailers = []
            self.trailers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.cur
        assert ex is not None
        self.in_head = False
        self.hdr_n = self.hdr_size = 0  # trailers get their own budget
        raw, self._raw = self._raw, None
        p = self.parser
        ex.method = method = p.get_method()
        ex.version = version = p.get_http_version()
        ex.keep_alive = bool(p.should_keep_alive())
        ex.upgrade = upgrade = bool(p.should_upgrade())
        url = ex.url
        target = url[0] if len(url) == 1 else b"".join(url)
        ex.url = []
        f = http1.Framing(ex.headers)
        host = f.host
        te = f.te
        ex.expect_continue = f.expect_continue
        if te is not None:
            bad = http1.unknown_coding(te)
            if bad is not None:
                self._reject(501, f"unknown transfer coding {bad.decode('latin-1')[:40]!r}")
            ex.body_kind = CHUNKED
        elif f.length is not None and f.length != b"0":
            ex.body_kind = LENGTH
        if method != b"CONNECT" and target[:1] == b"/" and host is not None:
            ex.authority = host.decode("latin-1").strip()
            ex.path = target.decode("latin-1")
            ex.target = target
            if raw is not None and f.plain and not upgrade and version == "1.1" \
                    and (te is None or f.chunked_only):
                # Nothing to change: the head travels on as the client sent it.
                end = raw.find(b"\r\n\r\n")
                if end > 0:
                    ex.req_head = raw[:end + 4]
                    if self.queue[0] is ex:
                        ex.start()
                    return
        self._build_head(ex, method, target, host, te, upgrade)
        if self.queue[0] is ex:
            ex.start()

    def _build_head(self, ex: Exchange, method: bytes, target: bytes, host: bytes | None,
                    te: bytes | None, upgrade: bool) -> None:
        """The request head for the next hop, written anew: origin-form target,
        Host, hop-by-hop fields dropped (RFC 9110 §7.6.1), framing of our own."""
        extra = b""
        keep: frozenset[bytes] = frozenset()
        if method == b"CONNECT":
            ex.authority = target.decode("latin-1")
            ex.path = ""
        else:
            absolute = None if target[:1] == b"/" else http1.split_absolute(target)
            if absolute is not None:
                ex.authority, target = absolute
                host = None  # the target's authority wins over Host (RFC 9112 §3.2.2)
            elif host is not None:
                ex.authority = host.decode("latin-1").strip()
            ex.path = target.decode("latin-1")
            if upgrade:
                keep = frozenset({b"upgrade"})
                extra = b"connection: upgrade\r\n"
        ex.target = target
        headers = http1.end_to_end(ex.headers, keep)
        if host is None:
            headers = [h for h in headers if h[0].lower() != b"host"]
            if ex.authority:
                extra += b"host: " + ex.authority.encode("latin-1") + b"\r\n"
        if te is not None:
            extra += b"transfer-encoding: " + te + b"\r\n"
        ex.req_head = request_head(method, target, headers, extra)

    def on_body(self, body: bytes) -> None:
        if self.cur is not None:
            self.cur.request_body(body)

    def on_message_complete(self) -> None:
        ex = self.cur
        self.cur = None
        trailers, self.trailers = self.trailers, None
        self.hdr_n = self.hdr_size = 0
        if ex is not None:
            ex.request_complete(trailers)

    def _upgrading(self, rest: bytes) -> None:
        """The client asked to switch protocols (or CONNECT): wait for the answer."""
        self.state = UPGRADING
        self.buf = bytearray(rest)
        self._pause(R_WAIT)
        if not self.queue:
            self._close()

    def _stop(self, status: int, reason: str) -> None:
        """Refuses the request being parsed; the connection closes after the answer."""
        self.state = STOPPED
        self.in_head = False
        self.transport.pause_reading()
        ex = self.cur
        self.cur = None
        if ex is None:
            ex = Exchange(self)
            self.queue.append(ex)
        ex.keep_alive = False
        if ex.started:
            ex.fail(status, reason)
            return
        if not ex.path and ex.url:
            ex.path = b"".join(ex.url)[:http1.MAX_REQUEST_LINE].decode("latin-1")
        ex.reject = (status, reason)
        if self.queue and self.queue[0] is ex:
            ex.start()

    # --- pausing and closing ------------------------------------------------------------

    def _pause(self, reason: int) -> None:
        was = self.paused
        self.paused = was | reason
        if not was and self.state != CLOSED:
            self.transport.pause_reading()

    def _resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            self._apply_pause()

    def _apply_pause(self) -> None:
        if self.state in (CLOSED, STOPPED):
            return
        if self.paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _active_upstream(self) -> Upstream | None:
        if self.tunnel_up is not None:
            return self.tunnel_up
        return self.queue[0].up if self.queue else None

    def _close(self) -> None:
        if self.state != CLOSED:
            self.flush()
            self.state = CLOSED
            self.transport.close()


__all__ = ["NO_BODY", "Downstream"]
