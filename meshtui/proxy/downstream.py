"""One accepted connection: protocol detection, the codec it hands bytes to, and
opaque relaying.

A connection starts in detection. Its first bytes pick a codec
(:mod:`meshtui.proxy.codec`): an HTTP/1 request line the HTTP/1.1 server side,
the HTTP/2 connection preface the HTTP/2 relay (TLS, whose first bytes are
neither, stays opaque). Anything else — or a client
that says nothing within the detect timeout, as clients of server-speaks-first
protocols do — is relayed unparsed. An upgraded request (101) or a CONNECT
turns an HTTP/1 connection into such a tunnel too.

Reading from the client is paused for as long as any reason holds (a pipelined
request waiting its turn, body bytes waiting for an upstream connection, a full
upstream socket buffer), so what the proxy holds per connection is bounded by
one socket read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from meshtui.identity.names import LINK_ALPN, peer_identity
from meshtui.proxy import http1
from meshtui.proxy.codec import R_UPSTREAM, R_WAIT, Codec
from meshtui.proxy.h2frames import (
    PROTOCOL_ERROR,
    SETTINGS,
    frame,
    goaway,
    may_be_server_preface,
)
from meshtui.proxy.http1_server import Http1Server
from meshtui.proxy.http2 import H2Relay
from meshtui.proxy.link import Link, Stream
from meshtui.proxy.mtls import client_hello_name, looks_like_tls, terminate
from meshtui.proxy.origdst import original_dst
from meshtui.proxy.pool import LoopDetected, Upstream
from meshtui.proxy.routing import NoRoute, Router

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.context import ProxyContext

# Connection states. TUNNEL_DETECT: a CONNECT tunnel is open and its first bytes
# tell whether it carries HTTP/2 (then the HTTP/2 codec reads it) or anything else.
DETECT, CODEC, CONNECTING, TUNNEL, TUNNEL_DETECT, CLOSED = range(6)

_UNKNOWN: tuple[str, int] = ("", 0)

log = logging.getLogger("meshtui.proxy")

#: Server bytes held while a CONNECT tunnel's client has not spoken yet: an HTTP/2
#: server's first SETTINGS and WINDOW_UPDATE are a few dozen bytes.
_MAX_HELD = 16384


class Side(Protocol):
    """The listener a connection was accepted on."""

    ctx: ProxyContext
    direction: Any
    inbound: bool
    router: Router
    transparent: bool
    open_conns: int  # connections accepted here and not yet closed
    max_conns: int  # more are refused (or an idle one makes room)


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

    def __init__(self, listener: Side) -> None:
        self.listener = listener
        self.ctx = listener.ctx
        self.direction = listener.direction
        self.transport: Any = None
        self.peer: tuple[str, int] = _UNKNOWN
        self.orig: tuple[str, int] | None = None
        self.conn_id = 0
        self.tcp: Any = _Unopened()
        self.state = DETECT
        self.closed = False
        self.codec: Codec | None = None
        self.outer: Codec | None = None  # a CONNECT's HTTP/1 codec, under an HTTP/2 one
        self.buf = bytearray()
        self.since = 0.0  # connection start (detection's clock)
        self.first_byte = 0.0  # when the client's first byte came (0: not yet)
        self.active = 0.0  # the last byte either way, for the opaque idle timeout
        # A tunnel opened for a client that said nothing (a server-speaks-first
        # protocol): closed if the server says nothing either.
        self.silent = False
        self.counted = False  # holds one of its listener's connection slots
        self.paused = 0
        self.reading_stopped = False  # a refused request: nothing more is read
        self.write_paused = False
        self.client_eof = False
        self.upstream_eof = False
        self.tunnel_up: Upstream | None = None
        self.tunnel_ex: Any = None  # what a tunnel's end is reported to (an exchange)
        self.tunnel_out = 0
        # What the server behind a CONNECT tunnel sent while the client's first bytes
        # are still awaited: an HTTP/2 server's SETTINGS (it need not wait for the
        # client's preface), kept for the HTTP/2 relay if the client speaks HTTP/2.
        self.held = bytearray()
        self.out: list[bytes] | None = None  # writes held by an open batch
        self._route: tuple[tuple[str, int], tuple[str, int]] | None = None
        self._tunnel_dst: tuple[str, int] = _UNKNOWN
        #: The peer's identity when the connection is mutual TLS ('' when plain): the
        #: client's inbound (from its certificate), the server's outbound.
        self.tls_id = ""

    @property
    def inbound(self) -> bool:
        return self.listener.inbound

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        ctx = self.ctx
        lst = self.listener
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else _UNKNOWN
        self.since = self.active = ctx.clock
        if lst.transparent:
            self.orig = original_dst(transport.get_extra_info("socket"))
        reached = ctx.pool.hops.get(self.peer)
        if reached is not None and self._arrived_at(reached):
            # This proxy's own upstream connection, come back: a loop, whatever
            # address it was spelled with.
            self._refuse("loop")
            return
        if not self.counted:  # (a TLS connection's decrypted side holds its slot already)
            if lst.open_conns >= lst.max_conns and not self._make_room():
                self._refuse("max_connections")
                return
            lst.open_conns += 1
            self.counted = True
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and not isinstance(transport, Stream) \
                and tls.selected_alpn_protocol() == LINK_ALPN:
            self._serve_link(transport)
            return
        ctx.conns.add(self)
        if tls is not None:
            self.tls_id = peer_identity(tls)
        # With identity on, an inbound connection may turn out to be TLS: its series
        # is opened once that is known.
        elif lst.inbound and ctx.pool.mesh_tls is not None:
            return
        dst = self._known_dst()
        if dst is not None:
            self._open_tcp(dst)
        if ctx.draining:
            transport.close()

    def data_received(self, data: bytes) -> None:
        # No exception may escape to the transport (asyncio would print "Fatal error
        # on transport" and leave the client unanswered): one connection pays.
        try:
            self.tcp.read(len(data))
            st = self.state
            self.active = self.ctx.clock
            if st == CODEC:
                self.codec.feed(data)  # type: ignore[union-attr]
            elif st == TUNNEL:
                up = self.tunnel_up
                if up is not None and up.transport is not None:
                    up.transport.write(data)
            elif st == DETECT:
                if not self.buf:
                    self.first_byte = self.ctx.clock
                self.buf += data
                self._detect(False)
            elif st == CONNECTING:
                # Early bytes for the tunnel: held (reading is paused) until it opens.
                self.buf += data
                self.pause(R_WAIT)
            elif st == TUNNEL_DETECT:
                self.buf += data
                self._detect_tunnel(False)
        except Exception:
            self._crashed("data")

    def eof_received(self) -> bool:
        try:
            # TLS has no half-close: over it the connection ends with the client's side.
            # (A stream of a link has one: END_STREAM.)
            t = self.transport
            return self._eof() and (isinstance(t, Stream)
                                    or t.get_extra_info("ssl_object") is None)
        except Exception:
            self._crashed("eof")
            return False

    def _crashed(self, where: str) -> None:
        log.debug("proxy: connection failed on client %s", where, exc_info=True)
        self.ctx.count_failure(self.direction, "internal_error")
        self.abort()

    def _arrived_at(self, addr: tuple[str, int]) -> bool:
        """Whether this connection was made to ``addr``: the listener's own address,
        or the one an iptables redirect took it from."""
        if self.orig is not None and self.orig == addr:
            return True
        name = self.transport.get_extra_info("sockname")
        return bool(name) and (name[0], name[1]) == addr

    def _refuse(self, reason: str) -> None:
        """Closes a connection just accepted (a reset: nothing was read), counted."""
        self.ctx.count_failure(self.direction, reason)
        self.state = CLOSED
        self.closed = True
        assert self.transport is not None
        self.transport.abort()

    def _make_room(self) -> bool:
        """At the listener's cap: closes its longest-idle connection that has no
        request under way (a keep-alive connection between requests, or one that
        has not sent a byte), so a new client is served rather than refused."""
        oldest: Downstream | None = None
        for conn in self.ctx.conns:
            if isinstance(conn, Downstream) and conn.listener is self.listener \
                    and conn.state != CLOSED and conn._idle() \
                    and (oldest is None or conn.active < oldest.active):
                oldest = conn
        if oldest is None:
            return False
        self.ctx.count_failure(self.direction, "idle_closed_for_room")
        oldest.close()
        oldest._uncount()
        return True

    def _idle(self) -> bool:
        if self.state == DETECT:
            return not self.buf
        if self.state == CODEC:
            return self.codec is not None and self.codec.idle()
        return self.state == TUNNEL and self.silent and self.active == self.since

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.listener.open_conns -= 1

    def _eof(self) -> bool:
        self.client_eof = True
        if self.state == TUNNEL_DETECT:
            self._detect_tunnel(True)
        st = self.state
        if st == TUNNEL:
            up = self.tunnel_up
            if up is not None and up.transport is not None and up.transport.can_write_eof():
                up.transport.write_eof()
            if self.upstream_eof:
                self.close()
            return True
        if st == DETECT:
            self._detect(True)
            return True
        if st == CODEC:
            return self.codec.eof()  # type: ignore[union-attr]
        return st == CONNECTING

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self.closed = True
        self.ctx.conns.discard(self)
        self._uncount()
        # The codec holds this connection and its parser holds the codec's bound
        # methods: reference cycles that, left in place, only the cyclic collector
        # frees — and a long-lived connection's cycle is promoted to a generation it
        # collects almost never.
        codecs = (self.codec, self.outer)
        self.codec = self.outer = None
        for codec in codecs:
            if codec is not None:
                codec.lost()
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

    # --- what codecs, exchanges and upstreams call ------------------------------------

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

    def upstream_paused(self, paused: bool) -> None:
        """The upstream's socket buffer filled up (or drained)."""
        if paused:
            self.pause(R_UPSTREAM)
        else:
            self.resume(R_UPSTREAM)

    def route(self, authority: str | None) -> tuple[tuple[str, int], tuple[str, int]]:
        """(connect to, destination) for a request; NoRoute if there is none."""
        route = self._route
        if route is not None:
            return route
        lst = self.listener
        if lst.inbound:
            route = lst.router.inbound(self.orig)
        else:
            route = lst.router.outbound(self.orig, authority)
            self.tls_id = self.ctx.pool.server_id(route[0])
        if isinstance(self.tcp, _Unopened):
            self._open_tcp(route[1])
        if lst.inbound or self.orig is not None:
            self._route = route  # the same for every request on this connection
        return route

    def terminates_connect(self) -> bool:
        """A CONNECT is the proxy's to carry out only when nobody else is asked: an
        outbound request that was not redirected (explicit mode)."""
        return not self.listener.inbound and self.orig is None

    def enter_tunnel(self, up: Upstream, ex: Any = None, dst: tuple[str, int] | None = None
                     ) -> None:
        """From here on bytes pass through unparsed, both ways; ``ex`` hears of the
        tunnel's end (``tunnel_closed``). With ``dst`` (a CONNECT the proxy carried
        out, to there), HTTP/2 inside the tunnel is read as such."""
        self.tunnel_up = up
        self.tunnel_ex = ex
        if dst is None:
            up.start_tunnel(self)
            self._relay()
            return
        # Detecting before the server's early bytes are handed over (they may be an
        # HTTP/2 server's SETTINGS, to be held for the relay).
        self.state = TUNNEL_DETECT
        self._tunnel_dst = dst
        self.since = self.ctx.clock
        up.start_tunnel(self)
        if self.state != TUNNEL_DETECT:
            return  # the server's first bytes were not HTTP/2's: relayed
        self.paused &= R_UPSTREAM
        self._apply_pause()
        if self.buf:
            self._detect_tunnel(False)

    def _relay(self) -> None:
        up = self.tunnel_up
        assert up is not None
        self.state = TUNNEL
        if self.held:
            held, self.held = bytes(self.held), bytearray()
            self.write(held)
            self.tunnel_out += len(held)
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
        if self.state == TUNNEL_DETECT:
            self.held += data
            if len(self.held) <= _MAX_HELD and may_be_server_preface(self.held):
                return  # an HTTP/2 server's SETTINGS, ahead of the client's preface
            self.held = self.held[:-len(data)]
            self._relay()  # the server spoke first, not in HTTP/2: no HTTP/2 client
        self.active = self.ctx.clock
        self.silent = False
        self.write(data)
        self.tunnel_out += len(data)

    def tunnel_eof(self) -> None:
        self.upstream_eof = True
        if self.state == CLOSED:
            return
        if self.state == TUNNEL_DETECT and self.held:
            self._relay()  # what was held goes out before the end
        if self.client_eof:
            self.close()
        elif self.transport.can_write_eof():
            self.flush()
            self.transport.write_eof()

    def tunnel_lost(self) -> None:
        self.tunnel_up = None
        self.close()  # after what is buffered has gone out

    def tick(self, now: float) -> None:
        """The sweeper's call: the detect and opaque idle timeouts here, the codec's
        own timeouts there."""
        st = self.state
        t = self.ctx.timeouts
        if st == CODEC:
            self.codec.tick(now)  # type: ignore[union-attr]
        elif st == TUNNEL:
            if self.silent and self.active == self.since:
                # Neither side has said anything: a client of a server-speaks-first
                # protocol hears from the server at once, so this is nobody's.
                if now - self.since > t.header_read:
                    self.ctx.count_failure(self.direction, "silent_timeout")
                    self.abort()
            elif now - self.active > t.opaque_idle:
                self.ctx.count_failure(self.direction, "idle_timeout")
                self.abort()
        elif st == DETECT and now - self.since > t.detect:
            self._detect(True)
        elif st == TUNNEL_DETECT and now - self.since > t.detect:
            self._detect_tunnel(True)

    def drain(self) -> None:
        """Shutting down: close now if nothing is under way; otherwise after it."""
        if self.state == DETECT:
            self.close()
        elif self.state == CODEC:
            self.codec.drain()  # type: ignore[union-attr]

    # --- pausing and closing ------------------------------------------------------------

    def pause(self, reason: int) -> None:
        was = self.paused
        self.paused = was | reason
        if not was and self.state != CLOSED:
            self.transport.pause_reading()

    def resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            self._apply_pause()

    def stop_reading(self) -> None:
        """Reads nothing more, whatever resumes later (a refused request)."""
        self.reading_stopped = True
        self.transport.pause_reading()

    def _apply_pause(self) -> None:
        if self.state == CLOSED or self.reading_stopped:
            return
        if self.paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _active_upstream(self) -> Upstream | None:
        if self.tunnel_up is not None:
            return self.tunnel_up
        return self.codec.upstream() if self.codec is not None else None

    def close(self) -> None:
        """Closes after what is buffered has gone out."""
        if self.state != CLOSED:
            self.flush()
            self.state = CLOSED
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Cuts the connection: the client sees a reset, nothing buffered goes out."""
        if self.state != CLOSED:
            self.state = CLOSED
            self.closed = True
            self.out = None
            self.transport.abort()

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
        self.tcp = self.ctx.telemetry.tcp_open(self.direction, self.peer, dst, self.tls_id)
        self.conn_id = getattr(self.tcp, "conn_id", 0) or self.ctx.next_conn_id()
        if prev.rd:
            self.tcp.read(prev.rd)
        if prev.wr:
            self.tcp.write(prev.wr)

    def _detect(self, timed_out: bool) -> None:
        mesh = self.ctx.pool.mesh_tls
        if mesh is not None and self.inbound and not self.tls_id:
            tls = looks_like_tls(self.buf)
            if tls is None and not timed_out:
                return
            if tls and mesh.identity.server_ctx is not None:
                whole, name = client_hello_name(self.buf)
                if not whole and not timed_out:
                    return
                if name == mesh.name:  # a meshed peer, asking for this pod's identity
                    self._terminate_tls(mesh.identity.server_ctx)
                    return
                # An unmeshed client's own TLS: the app's to answer, relayed as is.
            if isinstance(self.tcp, _Unopened):
                dst = self._known_dst()
                if dst is not None:
                    self._open_tcp(dst)
        kind = http1.detect(self.buf, timed_out=timed_out)
        if kind == http1.NEED_MORE:
            return
        if kind == http1.HTTP:
            self._start_codec(Http1Server(self, self.first_byte))
        elif kind == http1.HTTP2:
            self._start_codec(H2Relay(self))
        elif kind == http1.BAD_PREFACE:
            # The client meant HTTP/2: it is told so in HTTP/2, and nothing goes upstream.
            self.ctx.telemetry.count_http2_error("bad_preface")
            self.write(frame(SETTINGS, 0, 0) + goaway(0, PROTOCOL_ERROR, b"bad preface"))
            self.close()
        else:
            self.silent = not self.buf
            self._start_opaque()

    def _terminate_tls(self, server_ctx: Any) -> None:
        """Hands the connection to a TLS server side whose decrypted stream a new
        Downstream serves; this one gives up its slot and its place in the sweep."""
        first = bytes(self.buf)
        self.buf = bytearray()
        self.state = CLOSED
        self.closed = True
        self.ctx.conns.discard(self)
        lst, ctx = self.listener, self.ctx
        # The slot passes to the decrypted side, so that connections still in their
        # handshake count against the cap; given back if the handshake fails.
        inner = Downstream(lst)
        inner.counted, self.counted = self.counted, False

        def failed() -> None:
            ctx.count_failure(lst.direction, "tls_handshake")
            inner._uncount()

        terminate(ctx.loop, self.transport, inner, server_ctx, first, failed)

    def _serve_link(self, transport: Any) -> None:
        """A meshed caller's link (ALPN): each of its streams is served as a connection
        of its own; this object gives its place to the link, which keeps the slot."""
        self.state = CLOSED
        self.closed = True
        lst, ctx = self.listener, self.ctx

        def lost(link: Link) -> None:
            ctx.conns.discard(link)
            self._uncount()

        link = Link(False, accept=lambda: Downstream(lst), lost=lost)
        ctx.conns.add(link)
        transport.set_protocol(link)
        link.connection_made(transport)
        if ctx.draining:
            link.drain()

    def _detect_tunnel(self, timed_out: bool) -> None:
        kind = http1.detect(self.buf, timed_out=timed_out)
        if kind == http1.NEED_MORE:
            return
        up = self.tunnel_up
        if kind == http1.HTTP2 and up is not None:
            self.outer = self.codec  # the HTTP/1 codec the CONNECT came over
            relay = H2Relay(self, (up, (up.key, self._tunnel_dst)))
            self._start_codec(relay)
            if self.held:
                held, self.held = bytes(self.held), bytearray()
                relay.tunnel_data(held)
        else:
            self._relay()

    def _start_codec(self, codec: Codec) -> None:
        data = bytes(self.buf)
        self.buf = bytearray()
        self.codec = codec
        if self.closed:
            return  # the codec closed it already (an HTTP/2 connection with no route)
        self.state = CODEC
        if data:
            codec.feed(data)

    def _start_opaque(self) -> None:
        self.state = CONNECTING
        self.pause(R_WAIT)
        lst = self.listener
        try:
            if lst.inbound:
                connect = lst.router.inbound(self.orig)[0]
            else:
                connect = lst.router.outbound(self.orig, None)[0]
                self.tls_id = self.ctx.pool.server_id(connect)
        except NoRoute:
            self.ctx.count_failure(self.direction, "no_route")
            self.close()
            return
        self.ctx.loop.create_task(self._open_tunnel(connect))

    async def _open_tunnel(self, key: tuple[str, int]) -> None:
        ctx = self.ctx
        pool = ctx.pool
        try:
            up = await asyncio.wait_for(
                pool.connect(key, pooled=False),
                ctx.timeouts.connect)
        except LoopDetected:
            ctx.count_failure(self.direction, "loop")
            self.close()
            return
        except TimeoutError:
            ctx.count_failure(self.direction, "connect_timeout")
            self.close()
            return
        except OSError as e:
            ctx.count_failure(self.direction, "connect_refused"
                              if isinstance(e, ConnectionRefusedError) else "connect_error")
            self.close()
            return
        if self.state == CLOSED:
            up.close()
            return
        self.enter_tunnel(up)
