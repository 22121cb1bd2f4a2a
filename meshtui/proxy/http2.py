"""The HTTP/2 codec: a client connection that opened with the HTTP/2 preface
(prior knowledge, as gRPC without TLS does), relayed frame for frame to one
upstream connection of its own, and understood per stream.

Pairing one client connection with one upstream connection lets every frame
pass unchanged: flow control, window updates, SETTINGS and their
acknowledgements, PING and stream concurrency behave exactly as the two ends
expect, and the proxy never buffers a body. What it reads (see
:mod:`meshtui.proxy.h2frames`) becomes the same telemetry calls HTTP/1.1's
requests make: a stream's request headers open a request, the response's
headers start its response, and the stream's end — DATA or trailers with
END_STREAM, RST_STREAM, a GOAWAY that leaves it unprocessed, the connection
going — ends it, with the ``grpc-status`` of the trailers (or of a
trailers-only response's headers).

Misbehaviour ends the connection, never the proxy: a frame over the size the
receiver allows, a header block that does not decode or decodes to over 64 KiB,
a CONTINUATION flood, floods of SETTINGS, PING or stream resets. The proxy then
sends GOAWAY where it can (between frames) to both ends, closes both
connections and counts the event. Per-connection state is bounded: at most
``ctx.max_streams`` streams are tracked at once; more are relayed and counted
as untracked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshtui.proxy.codec import R_WAIT, Connection
from meshtui.proxy.h2frames import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    INTERNAL_ERROR,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SETTINGS,
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_MAX_FRAME_SIZE,
    FrameReader,
    H2Error,
    frame,
    goaway,
)
from meshtui.proxy.pool import LoopDetected
from meshtui.proxy.routing import NoRoute

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.pool import Upstream

log = logging.getLogger("meshtui.proxy")

#: Client bytes held while the upstream connection opens (reading pauses past it).
MAX_PENDING = 256 * 1024


class Budget:
    """A token bucket: ``burst`` events at once, ``rate`` a second after that."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = burst
        self.last = now

    def spend(self, now: float) -> bool:
        """Takes one token; False when there is none."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


# Budgets per connection and direction (burst, per second): far above what gRPC's
# keepalive and BDP pings, settings changes and cancellations need, far below a flood.
PING_BUDGET = (500.0, 100.0)
SETTINGS_BUDGET = (100.0, 20.0)
RESET_BUDGET = (500.0, 250.0)


class Stream:
    """One tracked stream: its request's observation and its response so far."""

    __slots__ = ("obs", "resp_bytes", "started")

    def __init__(self, obs: Any) -> None:
        self.obs = obs
        self.started = False
        self.resp_bytes = 0


class _Side:
    """One end's frames, as the relay's FrameSink: what both ends may flood."""

    __slots__ = ("pings", "relay", "resets", "settings")

    def __init__(self, relay: H2Relay, now: float) -> None:
        self.relay = relay
        self.pings = Budget(*PING_BUDGET, now)
        self.settings = Budget(*SETTINGS_BUDGET, now)
        self.resets = Budget(*RESET_BUDGET, now)

    def receiver(self) -> FrameReader:
        """The reader of the other end's frames, which this end's SETTINGS limit."""
        raise NotImplementedError

    def on_rst(self, sid: int, code: int) -> None:
        r = self.relay
        if not self.resets.spend(r.ctx.now()):
            raise H2Error("reset_flood", ENHANCE_YOUR_CALM, "streams reset too fast")
        r.stream_reset(sid, code)

    def on_settings(self, reader: FrameReader, ack: bool, values: list[tuple[int, int]]
                    ) -> bool:
        r = self.relay
        if not ack:
            if not self.settings.spend(r.ctx.now()):
                raise H2Error("settings_flood", ENHANCE_YOUR_CALM, "SETTINGS too often")
            r.receiver_settings(self.receiver(), values)
        return False

    def on_ping(self, reader: FrameReader, ack: bool) -> None:
        if not ack and not self.pings.spend(self.relay.ctx.now()):
            raise H2Error("ping_flood", ENHANCE_YOUR_CALM, "PING too often")


class _ClientSide(_Side):
    """The client's frames: the requests."""

    __slots__ = ()

    def receiver(self) -> FrameReader:
        return self.relay.from_server

    def on_headers(self, sid: int, end_stream: bool, headers: list[tuple[bytes, bytes]],
                   push: bool) -> None:
        self.relay.request_headers(sid, headers)

    def on_data(self, sid: int, end_stream: bool, size: int) -> None:
        pass

    def body_sink(self, sid: int) -> Callable[[bytes], None] | None:
        st = self.relay.streams.get(sid)
        return st.obs.capture_request if st is not None and st.obs.cap else None

    def on_settings(self, reader: FrameReader, ack: bool, values: list[tuple[int, int]]
                    ) -> bool:
        r = self.relay
        if ack and r.own_settings_unacked:
            r.own_settings_unacked = False
            return True  # the answer to the proxy's own SETTINGS is not the server's
        return super().on_settings(reader, ack, values)

    def on_goaway(self, last_sid: int, code: int) -> None:
        pass  # about streams the server opened: the proxy tracks none


class _ServerSide(_Side):
    """The server's frames: the responses."""

    __slots__ = ()

    def receiver(self) -> FrameReader:
        return self.relay.from_client

    def on_headers(self, sid: int, end_stream: bool, headers: list[tuple[bytes, bytes]],
                   push: bool) -> None:
        if not push:
            self.relay.response_headers(sid, end_stream, headers)

    def on_data(self, sid: int, end_stream: bool, size: int) -> None:
        st = self.relay.streams.get(sid)
        if st is not None:
            st.resp_bytes += size
            if end_stream:
                self.relay.response_end(sid, st, None)

    def on_goaway(self, last_sid: int, code: int) -> None:
        self.relay.server_goaway(last_sid)

    def body_sink(self, sid: int) -> Callable[[bytes], None] | None:
        st = self.relay.streams.get(sid)
        return st.obs.capture_response if st is not None and st.obs.cap else None


def _pseudo(headers: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes],
                                                         list[tuple[bytes, bytes]]]:
    """(pseudo-header fields, the regular fields): pseudo-headers come first (RFC 9113 §8.3)."""
    i = 0
    n = len(headers)
    while i < n and headers[i][0][:1] == b":":
        i += 1
    return dict(headers[:i]), headers[i:]


class H2Relay:
    """HTTP/2 streams on one client connection (a :class:`~meshtui.proxy.codec.Codec`)
    and the upstream connection paired with it (a ``TunnelEnd`` of its
    :class:`~meshtui.proxy.pool.Upstream`)."""

    def __init__(self, conn: Connection,
                 tunnel: tuple[Upstream, tuple[tuple[str, int], tuple[str, int]]] | None = None
                 ) -> None:
        """``tunnel``: the upstream connection and route of a CONNECT tunnel this
        HTTP/2 connection runs in (otherwise the relay routes and connects itself)."""
        self.conn = conn
        self.ctx = ctx = conn.ctx
        self.tel = ctx.telemetry
        self.up: Upstream | None = None
        self.opening: asyncio.Task[None] | None = None
        self.pending: list[bytes] | None = []  # client bytes until the upstream is there
        self.pending_n = 0
        self.route: tuple[tuple[str, int], tuple[str, int]] | None = None
        now = ctx.now()
        self._sides = (_ClientSide(self, now), _ServerSide(self, now))
        self.from_client = FrameReader(self._sides[0], preface=24)
        self.from_server = FrameReader(self._sides[1])
        self.streams: dict[int, Stream] = {}
        self.max_streams = ctx.max_streams
        self.last_sid = 0  # the highest stream the client opened
        self.counter = 0  # requests seen: tap's stream numbers
        self.done = False
        self.sent_eof = False  # the client's end of input went on upstream
        # Whether the proxy sent a SETTINGS of its own, and its ACK is still to come.
        self.own_settings = self.own_settings_unacked = False
        if tunnel is not None:
            self.route = tunnel[1]
            self._attach(tunnel[0])
        elif conn.inbound or conn.orig is not None:
            self._connect(None)
        else:
            # Explicit mode: the first stream's :authority says where this connection
            # goes, and clients (gRPC's) wait for the server's SETTINGS before opening
            # one. An empty SETTINGS (every default) lets them go on; its ACK is not
            # passed on, and the server's own SETTINGS follow once it is connected.
            self.own_settings = self.own_settings_unacked = True
            conn.write(frame(SETTINGS, 0, 0))

    # --- the codec interface (the client's side) ---------------------------------

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        try:
            self.from_client.feed(data, self._to_server)
        except H2Error as e:
            self.fail(e.kind, e.code, str(e))
        except Exception:  # a bug must cost this connection only
            log.exception("proxy: HTTP/2 relay failed on client bytes")
            self.fail("internal", INTERNAL_ERROR, "internal error")

    def eof(self) -> bool:
        self._eof_upstream()
        return True  # the server may still answer

    def lost(self) -> None:
        self._end_all(CANCEL)
        self.done = True
        up, self.up = self.up, None
        if up is not None:
            up.close()
        # The sides and this relay hold each other: let go, so that a closed
        # connection is freed at once rather than at the cyclic collector's next pass.
        for side in self._sides:
            del side.relay

    def tick(self, now: float) -> None:
        # A quiet HTTP/2 connection is the ends' to close (gRPC keeps them open, with
        # pings if it cares); one silent for the opaque idle timeout with no stream
        # open holds an upstream connection for nobody.
        if not self.streams and now - self.conn.active > self.ctx.timeouts.opaque_idle:
            self._goodbye(NO_ERROR, b"idle")

    def idle(self) -> bool:
        return not self.streams

    def drain(self) -> None:
        if not self.streams and not self.conn.closed:
            self._goodbye(NO_ERROR, b"")

    def upstream(self) -> Upstream | None:
        return self.up

    # --- the upstream's side (TunnelEnd) ----------------------------------------

    def tunnel_data(self, data: bytes) -> None:
        if self.done:
            return
        try:
            self.from_server.feed(data, self.conn.write)
        except H2Error as e:
            self.fail(e.kind, e.code, str(e))
        except Exception:
            log.exception("proxy: HTTP/2 relay failed on server bytes")
            self.fail("internal", INTERNAL_ERROR, "internal error")

    def tunnel_eof(self) -> None:
        self.conn.close()

    def tunnel_lost(self) -> None:
        self.up = None
        self._end_all(CANCEL)
        self.conn.close()

    def upstream_paused(self, paused: bool) -> None:
        self.conn.upstream_paused(paused)

    # --- streams ---------------------------------------------------------------

    def request_headers(self, sid: int, headers: list[tuple[bytes, bytes]]) -> None:
        if sid <= self.last_sid or not sid & 1 or self.done:
            return  # trailers, a stream not the client's to open, or a connection ended
        self.last_sid = sid
        pseudo, fields = _pseudo(headers)
        authority = (pseudo.get(b":authority") or _field(fields, b"host") or b"").decode(
            "latin-1")
        if self.route is None:
            self._connect(authority)
            if self.route is None:
                return
        if len(self.streams) >= self.max_streams:
            self.tel.untracked_streams += 1
            return
        self.counter += 1
        conn = self.conn
        obs = self.tel.request(
            conn.direction, conn.peer, self.route[1], conn.conn_id,
            pseudo.get(b":method", b"").decode("latin-1"),
            pseudo.get(b":scheme", b"http").decode("latin-1"), authority,
            pseudo.get(b":path", b"").decode("latin-1"), fields, self.counter, conn.tls_id)
        self.streams[sid] = Stream(obs)
        if obs.cap:  # tap wants bodies: both readers now copy DATA of such streams
            self.from_client.capturing = self.from_server.capturing = True

    def response_headers(self, sid: int, end_stream: bool, headers: list[tuple[bytes, bytes]]
                         ) -> None:
        st = self.streams.get(sid)
        if st is None:
            return
        if st.started:  # trailers
            self.response_end(sid, st, headers)
            return
        pseudo, fields = _pseudo(headers)
        try:
            status = int(pseudo.get(b":status", b"0"))
        except ValueError:
            status = 0
        if 100 <= status < 200:
            return  # interim
        st.started = True
        st.obs.response_start(status, fields)
        if end_stream:  # a trailers-only response: grpc-status is in these headers
            self.response_end(sid, st, None)

    def response_end(self, sid: int, st: Stream, trailers: list[tuple[bytes, bytes]] | None
                     ) -> None:
        del self.streams[sid]
        st.obs.response_end(st.resp_bytes, trailers)
        if self.ctx.draining and not self.streams:
            # Once this read's frames are out: the end of the stream is among them.
            self.ctx.loop.call_soon(self.drain)

    def stream_reset(self, sid: int, code: int) -> None:
        st = self.streams.pop(sid, None)
        if st is not None:
            st.obs.reset(code, st.resp_bytes)

    def server_goaway(self, last_sid: int) -> None:
        """Streams past ``last_sid`` were not processed: the client will retry them."""
        for sid in [s for s in self.streams if s > last_sid]:
            st = self.streams.pop(sid)
            st.obs.reset(REFUSED_STREAM, st.resp_bytes)

    def receiver_settings(self, reader: FrameReader, values: list[tuple[int, int]]) -> None:
        """SETTINGS one end sent: limits on what the other end sends it (``reader``).
        Limits only grow here: a peer may send by the old ones until it acknowledges."""
        for key, value in values:
            if key == SETTINGS_MAX_FRAME_SIZE and reader.max_frame < value <= (1 << 24) - 1:
                reader.max_frame = value
            elif key == SETTINGS_HEADER_TABLE_SIZE \
                    and value > reader.decoder.max_allowed_table_size:
                reader.decoder.max_allowed_table_size = value

    # --- failures ----------------------------------------------------------------

    def fail(self, kind: str, code: int, reason: str) -> None:
        """A violation: counted, GOAWAY to both ends where possible, both closed."""
        self.tel.count_http2_error(kind)
        log.debug("proxy: HTTP/2 connection from %s closed: %s", self.conn.peer, reason)
        self._end_all(code)
        self._goodbye(code, reason.encode("latin-1", "replace"))

    def _goodbye(self, code: int, debug: bytes) -> None:
        if self.done:
            return
        self.done = True
        up = self.up
        if up is not None and up.transport is not None and self.from_client.at_boundary \
                and not self.sent_eof:
            up.transport.write(goaway(0, code, debug))
        if self.from_server.at_boundary and not self.conn.closed:
            if self.from_server.frames == 0 and not self.own_settings:
                self.conn.write(frame(SETTINGS, 0, 0))  # the server preface comes first
            self.conn.write(goaway(self.last_sid, code, debug))
        self.conn.close()
        if up is not None:
            up.close()

    def _end_all(self, code: int) -> None:
        streams, self.streams = self.streams, {}
        for st in streams.values():
            st.obs.reset(code, st.resp_bytes)

    # --- the upstream connection ---------------------------------------------------

    def _connect(self, authority: str | None) -> None:
        try:
            self.route = self.conn.route(authority)
        except NoRoute as e:
            self.ctx.failures += 1
            self.fail("no_route", REFUSED_STREAM if authority else PROTOCOL_ERROR, e.reason)
            return
        # Held: the loop keeps only a weak reference to a task.
        self.opening = self.ctx.loop.create_task(self._open(self.route[0]))

    async def _open(self, key: tuple[str, int]) -> None:
        ctx = self.ctx
        try:
            pool = ctx.pool
            up = await asyncio.wait_for(
                pool.connect(key, pooled=False),
                ctx.timeouts.connect)
        except LoopDetected:
            ctx.failures += 1
            self.fail("loop", REFUSED_STREAM, "the connection would loop back to this proxy")
            return
        except (OSError, TimeoutError) as e:
            ctx.failures += 1
            self.fail("connect", REFUSED_STREAM, f"upstream {key[0]}:{key[1]}: {e}")
            return
        finally:
            self.opening = None  # (a cycle through this coroutine otherwise)
        if self.done or self.conn.closed:
            up.close()
            return
        self._attach(up)

    def _attach(self, up: Upstream) -> None:
        self.up = up
        up.start_tunnel(self)
        pending, self.pending = self.pending, None
        if pending and up.transport is not None:
            up.transport.writelines(pending)
        if self.conn.write_paused and up.transport is not None:
            up.transport.pause_reading()
        self.conn.resume(R_WAIT)
        if self.conn.client_eof:
            self._eof_upstream()

    def _eof_upstream(self) -> None:
        up = self.up
        if up is not None and up.transport is not None and up.transport.can_write_eof():
            up.transport.write_eof()
            self.sent_eof = True

    def _to_server(self, data: bytes) -> None:
        up = self.up
        if up is not None:
            if up.transport is not None:
                up.transport.write(data)
            return
        pending = self.pending
        if pending is None:
            return
        pending.append(data)
        self.pending_n += len(data)
        if self.pending_n > MAX_PENDING:
            self.conn.pause(R_WAIT)  # resumed once the upstream is there


def _field(fields: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in fields:
        if n == name:
            return v
    return None


__all__ = ["H2Relay"]
