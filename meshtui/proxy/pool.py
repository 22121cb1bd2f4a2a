"""Upstream connections: one protocol object per TCP connection the proxy opens,
and a pool that keeps idle HTTP/1.1 ones for reuse.

An :class:`Upstream` carries one exchange at a time (the proxy never pipelines
upstream). It parses the response with httptools and hands each piece to its
exchange; after a ``101 Switching Protocols``, a tunnelled ``CONNECT`` or for an
opaque TCP relay it stops parsing and passes bytes straight to the downstream
connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httptools

from meshtui.proxy.http1 import serialize
from meshtui.proxy.link import Stream
from meshtui.proxy.mtls import HANDSHAKE_TIMEOUT, MeshTls, check_server

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.links import Links

Key = tuple[str, int]

log = logging.getLogger("meshtui.proxy")


class LoopDetected(OSError):
    """The connection reached one of the proxy's own listeners."""


def is_own(peer: Key, local_ip: str, own: set[Key]) -> bool:
    """Whether a connection whose far end is ``peer`` (and near end ``local_ip``)
    reached one of the listeners in ``own``: the same address and port, or the
    port of a listener on every address (0.0.0.0, ::) at an address of this host.
    Addresses as the kernel reports them, so every spelling of one (localhost,
    127.1, 2130706433, 0.0.0.0) is caught."""
    if peer in own:
        return True
    ip, port = peer[0], peer[1]
    local = ip == local_ip or ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")
    return local and any(p == port and h in ("0.0.0.0", "::", "") for h, p in own)


class Batching(Protocol):
    """The client connection a response goes to, as an :class:`Upstream` sees it."""

    out: list[bytes] | None

    def flush(self) -> None: ...
    def upstream_paused(self, paused: bool) -> None: ...


class ResponseSink(Protocol):
    """The exchange an :class:`Upstream` carries (:class:`~meshtui.proxy.exchange.Exchange`)."""

    method: bytes
    conn: Any  # a Batching; Any: a Protocol attribute would have to match exactly

    def response_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                      raw: bytes | None = None) -> None: ...
    def response_body(self, data: bytes) -> None: ...
    def response_complete(self, up: Upstream, trailers: list[tuple[bytes, bytes]] | None,
                          keep: bool) -> None: ...
    def response_upgraded(self, up: Upstream, rest: bytes) -> None: ...
    def upstream_error(self, up: Upstream, reason: str) -> None: ...
    def upstream_lost(self, up: Upstream, exc: Exception | None) -> None: ...


class TunnelEnd(Protocol):
    """The downstream side of a tunnel, as an :class:`Upstream` sees it."""

    def tunnel_data(self, data: bytes) -> None: ...
    def tunnel_eof(self) -> None: ...
    def tunnel_lost(self) -> None: ...
    def upstream_paused(self, paused: bool) -> None: ...


class Upstream(asyncio.Protocol):
    """One connection from the proxy to an upstream."""

    __slots__ = ("_done", "_early", "_extra", "_hdrs", "_hops", "_in_body", "_raw", "_reason",
                 "_stale", "closed", "ex", "hop", "key", "parser", "pool", "reused", "since",
                 "transport", "tunnel")

    def __init__(self, pool: Pool | None, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.ex: ResponseSink | None = None
        self.tunnel: TunnelEnd | None = None
        self.parser: Any = None
        self.closed = False
        self.reused = False
        self.since = 0.0
        self._hdrs: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._in_body = False
        # The response's end, delivered once the read that carried it is parsed whole:
        # the exchange may hand this connection to the next request, which must not
        # see callbacks of this parser.
        self._done: tuple[list[tuple[bytes, bytes]] | None, bool] | None = None
        self._extra = False  # bytes past the end of the response: not fit for reuse
        self._stale = False  # the parser is mid-message (after a HEAD): replace it
        # The read a response starts at (its first after the request), whose head may
        # then pass on as the upstream sent it.
        self._raw: bytes | None = None
        # Bytes a server sent before this connection was put to use. A server that
        # speaks first (an HTTP/2 server's SETTINGS, SMTP's banner) can do so before
        # the tunnel that was opened for it starts: they are held, then passed on.
        self._early: bytearray | None = bytearray()
        # This connection's own address, while it is open, in the set of them the
        # proxy's listeners check every new client against (a loop comes back as one).
        self.hop: Key | None = None
        self._hops: dict[Key, Key] | None = None

    # --- driving it ---------------------------------------------------------------

    def send_head(self, ex: ResponseSink, head: bytes) -> None:
        """Starts an exchange: a fresh response parser, then the request head."""
        self.ex = ex
        self._early = None
        if self.parser is None:  # a parser that ended a message cleanly goes on to the next
            self.parser = httptools.HttpResponseParser(self)
        self._hdrs = []
        self._in_body = False
        self._done = None
        self._raw = b""  # armed: the next read starts the response
        assert self.transport is not None
        self.transport.write(head)

    def start_tunnel(self, end: TunnelEnd) -> None:
        """From now on bytes pass through unparsed."""
        self.tunnel = end
        self.ex = None
        self.parser = None
        early, self._early = self._early, None
        if early:
            end.tunnel_data(bytes(early))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        # No exception may reach the transport (asyncio would print "Fatal error on
        # transport"): the exchange on this connection fails, nothing else.
        try:
            tunnel = self.tunnel
            if tunnel is not None:
                tunnel.tunnel_data(data)
                return
            ex = self.ex
            if ex is None:
                if self._early is not None and len(self._early) < 65536:
                    self._early += data  # not put to use yet: see __init__
                    return
                self.abort()  # bytes from an idle connection: it is not fit for reuse
                return
            if self._raw is not None:
                self._raw = data
            down: Batching = ex.conn
            opened = down.out is None  # Downstream.batch(), inlined
            if opened:
                down.out = []
            try:
                try:
                    self.parser.feed_data(data)
                except httptools.HttpParserUpgrade as e:
                    if self.ex is not None:
                        self.ex.response_upgraded(self, data[e.args[0]:])
                    return
                except httptools.HttpParserError as e:
                    if self.ex is not None and self._done is None:
                        self.ex.upstream_error(self, f"invalid response from upstream: {e}")
                        return
                    self._extra = True
                done = self._done
                if done is not None and self.ex is not None:
                    self._done = None
                    if self._stale or self._extra:
                        self.parser = None
                        self._stale = False
                    self.ex.response_complete(self, done[0], done[1] and not self._extra)
            finally:
                if opened:
                    down.flush()
        except Exception:
            log.debug("proxy: upstream connection failed on its bytes", exc_info=True)
            ex = self.ex
            self.abort()
            if ex is not None:
                ex.upstream_error(self, "internal error")
            # (a tunnel hears of it from connection_lost)

    def eof_received(self) -> bool:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.tunnel_eof()
            # Keep sending the other way until it ends too; TLS has no half-close.
            t = self.transport
            return t is None or isinstance(t, Stream) or t.get_extra_info("ssl_object") is None
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._hops is not None:
            self._hops.pop(self.hop, None)  # type: ignore[arg-type]
            self._hops = None
        self.parser = None  # a reference cycle through its callbacks (Downstream has why)
        if self.tunnel is not None:
            self.tunnel.tunnel_lost()
        elif self.ex is not None:
            self.ex.upstream_lost(self, exc)
        elif self.pool is not None:
            self.pool.forget(self)

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_paused(True)
        elif self.ex is not None:
            self.ex.conn.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_paused(False)
        elif self.ex is not None:
            self.ex.conn.upstream_paused(False)

    # --- httptools callbacks (the response) ------------------------------------------

    def on_message_begin(self) -> None:
        if self._done is not None:
            self._extra = True

    def on_status(self, reason: bytes) -> None:
        self._reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._hdrs.append((name, value))

    def on_headers_complete(self) -> None:
        hdrs, self._hdrs = self._hdrs, []
        raw, self._raw = self._raw, None
        status = self.parser.get_status_code()
        if status >= 200 or status == 101:
            self._in_body = True
        ex = self.ex
        if ex is not None:
            head = None
            if raw:
                end = raw.find(b"\r\n\r\n")
                if end > 0:
                    head = raw[:end + 4]
            ex.response_head(status, self._reason, hdrs, head)
            if self._in_body and ex.method == b"HEAD" and self._done is None:
                # llhttp cannot know a HEAD response has no body whatever its framing says
                # (and waits for one: the next exchange needs a parser of its own).
                self._done = (None, bool(self.parser.should_keep_alive()))
                self._stale = True

    def on_body(self, body: bytes) -> None:
        if self.tunnel is not None:  # a CONNECT's 2xx: the rest of this read is tunnel
            self.tunnel.tunnel_data(body)
        elif self.ex is not None and self._done is None:
            self.ex.response_body(body)

    def on_message_complete(self) -> None:
        if not self._in_body or self._done is not None:  # a 1xx's end; a HEAD's
            return
        trailers, self._hdrs = self._hdrs, []
        self._done = (trailers or None, bool(self.parser.should_keep_alive()))


async def open_upstream(key: Key, pool: Pool | None = None, mark: int | None = None,
                        source_ip: str | None = None, hops: dict[Key, Key] | None = None,
                        own: set[Key] | None = None,
                        tls: tuple[ssl.SSLContext, str] | None = None) -> Upstream:
    """Connects to ``key``; OSError (refused, unreachable, unresolvable) if it cannot,
    LoopDetected if ``key`` turned out to be one of the listeners in ``own``.

    Args:
        mark: a socket mark (SO_MARK) so that iptables rules can let the proxy's own
            connections through instead of redirecting them back to it.
        source_ip: a loopback address of the pod's own to connect from, for loopback
            destinations: on one machine where every pod has an address in
            127.0.0.0/8, the peer's proxy then knows which pod is calling.
        hops: where the connection's own address is kept, with the address it
            reached, while it is open.
        tls: (client context, the server identity it must present): mutual TLS to a
            meshed peer's proxy; OSError if the server is someone else.
    """
    proto = await dial(key, lambda: Upstream(pool, key), mark, source_ip, tls)
    return _checked(proto, hops, own, tls)


async def dial(key: Key, factory: Callable[[], asyncio.Protocol], mark: int | None = None,
               source_ip: str | None = None,
               tls: tuple[ssl.SSLContext, str] | None = None) -> Any:
    """Connects to ``key`` as :func:`open_upstream` does; the protocol made."""
    loop = asyncio.get_running_loop()
    local = (source_ip, 0) if source_ip and key[0].startswith("127.") else None
    wrap: dict[str, Any] = {} if tls is None else {
        "ssl": tls[0], "server_hostname": tls[1], "ssl_handshake_timeout": HANDSHAKE_TIMEOUT}
    if mark is None:
        _, proto = await loop.create_connection(factory, key[0], key[1],
                                                local_addr=local, **wrap)
        return proto
    infos = await loop.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve {key[0]}")
    family, type_, proto_num, _, addr = infos[0]
    sock = socket.socket(family, type_, proto_num)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_MARK", 36), mark)
        if local is not None:
            sock.bind(local)
        await loop.sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    _, proto = await loop.create_connection(factory, sock=sock, **wrap)
    return proto


def _checked(up: Upstream, hops: dict[Key, Key] | None, own: set[Key] | None,
             tls: tuple[ssl.SSLContext, str] | None = None) -> Upstream:
    t = up.transport
    if t is None:
        return up
    if tls is not None:
        check_server(t, tls[1])
    name = t.get_extra_info("sockname")
    peer = t.get_extra_info("peername")
    if own and name and peer and is_own((peer[0], peer[1]), name[0], own):
        up.abort()
        raise LoopDetected("the destination is this proxy")
    if hops is not None and name and peer:
        up.hop = (name[0], name[1])
        up._hops = hops
        hops[up.hop] = (peer[0], peer[1])
    return up


class Pool:
    """Idle keep-alive upstream connections, per (host, port), newest first out.

    Args:
        max_idle: idle connections kept per key; more are closed.
        idle_timeout: seconds an idle connection is kept.
        mark: socket mark for new connections (see :func:`open_upstream`).
    """

    def __init__(self, max_idle: int = 512, idle_timeout: float = 30.0,
                 mark: int | None = None, source_ip: str | None = None) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.mark = mark
        self.source_ip = source_ip
        #: This proxy's identity and its peers' (None: identity off, everything plain).
        self.mesh_tls: MeshTls | None = None
        #: Links to meshed peers (None: identity off, or each connection its own TLS).
        self.links: Links | None = None
        self._idle: dict[Key, list[Upstream]] = {}
        #: The proxy's open upstream connections, local address to the address
        #: reached: a client coming from one of them to that same address is the
        #: proxy itself (a loop). The pair, not the local address alone: the kernel
        #: gives one local port to connections to different destinations, so a
        #: real client may share a port with one of the proxy's connections.
        self.hops: dict[Key, Key] = {}
        #: The proxy's own listeners, never a destination.
        self.own: set[Key] = set()
        self.opened = 0
        self.reused = 0

    def acquire(self, key: Key) -> Upstream | None:
        """An idle connection to ``key`` ready for a request, or None."""
        idle = self._idle.get(key)
        while idle:
            up = idle.pop()
            if not up.closed and up.transport is not None and not up.transport.is_closing():
                up.reused = True
                self.reused += 1
                return up
        return None

    def tls(self, key: Key) -> tuple[ssl.SSLContext, str] | None:
        """How to wrap a new connection to ``key`` (None: plain)."""
        return self.mesh_tls.client(key) if self.mesh_tls is not None else None

    def server_id(self, key: Key) -> str:
        """The identity a connection to ``key`` is checked against ('' when plain)."""
        m = self.mesh_tls
        return (m.server_identity(key) or "") if m is not None else ""

    async def connect(self, key: Key, pooled: bool = True) -> Upstream:
        """A new connection to ``key``: kept in this pool once its exchange ends when
        ``pooled``, else its owner's (a tunnel, an HTTP/2 relay). To a meshed peer, a
        stream of the link to it when the peer takes links."""
        tls = self.tls(key)
        up = None
        if tls is not None and self.links is not None:
            up = await self.links.stream(key, tls[1], self if pooled else None)
        if up is None:
            up = await open_upstream(key, self if pooled else None, self.mark,
                                     self.source_ip, self.hops, self.own, tls)
        if pooled:
            self.opened += 1
        return up

    def release(self, up: Upstream) -> None:
        """Takes back a connection whose exchange ended cleanly."""
        up.ex = None
        idle = self._idle.setdefault(up.key, [])
        if up.closed or len(idle) >= self.max_idle:
            up.close()
            return
        up.since = time.monotonic()
        idle.append(up)

    def forget(self, up: Upstream) -> None:
        """An idle connection closed by its peer."""
        idle = self._idle.get(up.key)
        if idle and up in idle:
            idle.remove(up)

    def sweep(self, now: float) -> None:
        """Closes connections idle for longer than ``idle_timeout``."""
        limit = now - self.idle_timeout
        for key, idle in list(self._idle.items()):
            keep = [u for u in idle if u.since > limit and not u.closed]
            for u in idle:
                if u.since <= limit:
                    u.close()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if self.links is not None:
            self.links.sweep(now, self.idle_timeout)

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        for idle in self._idle.values():
            for u in idle:
                u.close()
        self._idle.clear()
        if self.links is not None:
            self.links.close()


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
                 extra: bytes) -> bytes:
    """The request head the proxy sends upstream (always HTTP/1.1)."""
    return serialize(b"%b %b HTTP/1.1" % (method, target), headers, extra)
