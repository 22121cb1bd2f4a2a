"""The HTTP/1.1 codec: the server side of a client connection that speaks HTTP/1.

Requests are parsed with httptools (llhttp) and become
:class:`~meshtui.proxy.exchange.Exchange` objects, answered in order (pipelined
requests wait their turn, with reading paused). A request the proxy refuses —
malformed, over a limit (DESIGN.md principle 7), too slow — is answered by the
proxy itself and the connection closes after it. An upgraded request (101) or a
CONNECT hands the connection to the tunnel.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import httptools

from meshtui.proxy import http1
from meshtui.proxy.codec import R_PENDING, R_PIPELINE, R_WAIT, Connection
from meshtui.proxy.exchange import CHUNKED, LENGTH, Exchange
from meshtui.proxy.pool import request_head

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.pool import Upstream

# Modes of the codec.
HTTP, UPGRADING, STOPPED = range(3)


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; the reason is kept aside."""


class Http1Server:
    """HTTP/1 requests on one client connection (a :class:`~meshtui.proxy.codec.Codec`)."""

    def __init__(self, conn: Connection, first_byte: float = 0.0) -> None:
        """``first_byte``: when the client's first byte came, if before this codec
        (detection): the first request head's timeout runs from it."""
        self.conn = conn
        self.ctx = conn.ctx
        self.first_byte = first_byte
        # The request body being read: when its clock started, bytes so far, and the
        # sweeper's last look (time reading was paused by the proxy does not count).
        self.body_since = 0.0
        self.body_bytes = 0
        self.body_tick = 0.0
        self.mode = HTTP
        self.streams = 0  # requests seen on this connection: tap's stream numbers
        self.since = self.ctx.clock  # the last time the connection became idle
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
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
        self._raw: bytes | None = None  # the read a request head starts at, if at its start
        self.idle_up: Upstream | None = None  # kept from the last request for the next

    # --- the codec interface ------------------------------------------------------

    def feed(self, data: bytes) -> None:
        mode = self.mode
        if mode == HTTP:
            self._feed(data)
        elif mode == UPGRADING:
            # Early bytes for the tunnel: held (reading is paused) until it opens.
            self.conn.buf += data
            self.conn.pause(R_WAIT)
        # STOPPED: the request was refused; what follows is discarded.

    def eof(self) -> bool:
        # Answer what was asked, then close.
        return bool(self.queue)

    def lost(self) -> None:
        self.parser = None
        if self.idle_up is not None:
            self.ctx.pool.release(self.idle_up)
            self.idle_up = None
        for ex in self.queue:
            ex.client_gone()
        self.queue.clear()

    def tick(self, now: float) -> None:
        """Enforces the header-read, body, idle and response timeouts."""
        if self.mode != HTTP:
            return
        t = self.ctx.timeouts
        if self.in_head:
            if now - self.head_since > t.header_read:
                self._stop(408, f"request head not received within {t.header_read:g}s")
        elif not self.queue:
            if now - self.since > t.idle:
                self.conn.close()
        else:
            ex = self.queue[0]
            if ex.waiting_since and now - ex.waiting_since > t.response:
                ex.timed_out()
            elif self.cur is not None and self.body_since:
                self._body_tick(now, t.body, t.min_body_rate)

    def _body_tick(self, now: float, base: float, rate: float) -> None:
        """A request body slower than the body timeout allows is refused: 408, or a
        cut connection once its response has begun (and its upstream closed)."""
        if self.conn.paused:
            self.body_since += now - self.body_tick  # the proxy's wait, not the client's
        self.body_tick = now
        if now - self.body_since > base + self.body_bytes / rate:
            self._stop(408, f"request body slower than {rate:g} bytes/s after "
                       f"{base:g}s ({self.body_bytes} bytes received)")

    def idle(self) -> bool:
        return self.mode == HTTP and not self.queue and not self.in_head

    def drain(self) -> None:
        if self.mode == HTTP and not self.queue and not self.in_head:
            self.conn.close()

    def upstream(self) -> Upstream | None:
        return self.queue[0].up if self.queue else None

    # --- what exchanges call --------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.ctx.draining

    def pending_body(self, waiting: bool) -> None:
        """Body bytes wait for an upstream connection: read no more until it is there."""
        if waiting:
            self.conn.pause(R_PENDING)
        else:
            self.conn.resume(R_PENDING)

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
        if self.conn.closed:
            self.ctx.pool.release(up)
        else:
            up.ex = None
            self.idle_up = up

    def exchange_done(self, ex: Exchange, close: bool, abort: bool) -> None:
        """An exchange's response is out: on to the next request, or close."""
        q = self.queue
        if q and q[0] is ex:
            q.popleft()
        elif ex in q:
            q.remove(ex)
        conn = self.conn
        if conn.closed:
            return
        if abort:
            conn.abort()
            return
        if close or self.ctx.draining or (conn.client_eof and not q):
            conn.close()
            return
        self.since = self.ctx.clock
        if conn.paused & R_PIPELINE and len(q) <= 1:
            conn.resume(R_PIPELINE)
        if q:
            self._kick()
        elif self.mode == STOPPED:
            conn.close()

    def _kick(self) -> None:
        """Starts the oldest request if its head is whole (or refused) and it has not
        started: requests are answered one at a time, in order."""
        q = self.queue
        if q:
            nxt = q[0]
            if not nxt.started and (nxt.req_head is not None or nxt.reject is not None):
                nxt.start()

    # --- parsing --------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            self._raw = None
        elif self.cur is None and data[:1] not in (b"\r", b"\n"):
            self._raw = data  # a request starts right here: its head may pass as is
        else:
            self._raw = None
        # A request whose head completes in this read starts only once the whole
        # read has parsed: a framing fault right behind the head (a bad chunk size)
        # refuses it before a byte of it goes upstream.
        try:
            self.parser.feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserUpgrade as e:
            self._kick()
            self._upgrading(data[e.args[0]:])
            return
        except httptools.HttpParserError as e:
            if self.mode == HTTP and not self.conn.closed:
                reason = self.rejected or (400, f"malformed request: {e}")
                self._stop(*reason)
            self._kick()
            return
        self._kick()
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
        # From the first byte of the request (llhttp calls this at the first), or of
        # the connection when detection read it.
        self.head_since = self.first_byte or self.ctx.clock
        self.first_byte = 0.0
        self.head_bytes = 0
        self.url_len = self.hdr_n = self.hdr_size = 0
        if len(q) > 1:
            self.conn.pause(R_PIPELINE)

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
        assert p is not None
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
        # What RFC 9112 makes a server refuse, refused before anything goes upstream.
        if f.hosts != 1 and (version == "1.1" or f.hosts > 1):
            self._reject(400, "no Host header in an HTTP/1.1 request" if not f.hosts
                         else "more than one Host header")
        if te is not None:
            bad = http1.unknown_coding(te)
            if bad is not None:
                self._reject(501, f"unknown transfer coding {bad.decode('latin-1')[:40]!r}")
            if version != "1.1":
                self._reject(400, "Transfer-Encoding in an HTTP/1.0 request")
            if not http1.chunked_last(te):
                self._reject(400, "request body framing: chunked is not the final "
                             "transfer coding")
            ex.body_kind = CHUNKED
        elif f.length is not None and f.length != b"0":
            ex.body_kind = LENGTH
        if ex.body_kind:
            self.body_since = self.body_tick = self.ctx.clock
            self.body_bytes = 0
        if method != b"CONNECT" and target[:1] == b"/" and host is not None:
            ex.authority = host.decode("latin-1").strip()
            ex.path = target.decode("latin-1")
            ex.target = target
            if raw is not None and f.plain and not upgrade and version == "1.1" \
                    and (te is None or f.chunked_only) \
                    and raw.startswith(b"%b %b HTTP/1.1\r\n" % (method, target)):
                # Nothing to change: the head travels on as the client sent it. (A
                # request line the parser took leniently — spaces doubled, a bare LF —
                # is written anew, so the upstream cannot read it another way.)
                end = raw.find(b"\r\n\r\n")
                if end > 0:
                    ex.req_head = raw[:end + 4]
                    return
        self._build_head(ex, method, target, host, te, upgrade)

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
        self.body_bytes += len(body)
        if self.cur is not None:
            self.cur.request_body(body)

    def on_message_complete(self) -> None:
        ex = self.cur
        self.cur = None
        self.body_since = 0.0
        trailers, self.trailers = self.trailers, None
        self.hdr_n = self.hdr_size = 0
        if ex is not None:
            ex.request_complete(trailers)

    def _upgrading(self, rest: bytes) -> None:
        """The client asked to switch protocols (or CONNECT): wait for the answer."""
        self.mode = UPGRADING
        self.conn.buf = bytearray(rest)
        self.conn.pause(R_WAIT)
        if not self.queue:
            self.conn.close()

    def _stop(self, status: int, reason: str) -> None:
        """Refuses the request being parsed; the connection closes after the answer."""
        self.mode = STOPPED
        self.in_head = False
        self.conn.stop_reading()
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
