"""The link between two meshed proxies: many connections as HTTP/2 CONNECT streams of
one connection. Both ends here, then each end against the h2 library's other end
(an HTTP/2 implementation no one here wrote), over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest

from meshtui.proxy.link import HIGH_WATER, STREAM_WINDOW, Link


class End(asyncio.Protocol):
    """One connection's end, as the proxy's protocols use a transport."""

    def __init__(self, echo: bool = False, keep_open: bool = False) -> None:
        self.echo = echo
        self.keep_open = keep_open
        self.transport: asyncio.Transport | None = None
        self.got = bytearray()
        self.eof = False
        self.paused = 0
        self.resumed = 0
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got += data
        if self.echo:
            assert self.transport is not None
            self.transport.write(data.upper())

    def eof_received(self) -> bool:
        self.eof = True
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1


@dataclass
class Pair:
    client: Link
    server: Link | None
    ends: list[End] = field(default_factory=list)  # the callee's, one per stream


async def until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < end, "timed out"
        await asyncio.sleep(0.005)


async def stalled(pair: Pair) -> tuple[End, End]:
    """(the caller's end, the callee's end) of a new stream whose callee echoes nothing
    and has stopped reading."""
    e = End()
    pair.client.open_stream(e, "10.0.0.1:80")
    assert e.transport is not None
    e.transport.write(b"!")
    await until(lambda: len(pair.ends) == 1)
    callee = pair.ends[0]
    callee.echo = False
    assert callee.transport is not None
    callee.transport.pause_reading()
    return e, callee


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    box: list[Link] = []
    ends: list[End] = []
    keep = {"open": False}

    def accept() -> End:
        e = End(echo=True, keep_open=keep["open"])
        ends.append(e)
        return e

    def make() -> Link:
        link = Link(False, accept=accept)
        box.append(link)
        return link

    server = await loop.create_server(make, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(lambda: Link(True), "127.0.0.1", port)
    p = Pair(client, None, ends)
    p.keep = keep  # type: ignore[attr-defined]
    await until(lambda: bool(box))
    p.server = box[0]
    yield p
    client.abort()
    server.close()


async def test_many_connections_travel_side_by_side_each_getting_its_own_bytes(
        pair: Pair) -> None:
    ends = [End() for _ in range(50)]
    for i, e in enumerate(ends):
        pair.client.open_stream(e, "10.0.0.1:80")
        assert e.transport is not None
        e.transport.write(f"conn {i} ".encode() * 20)
    await until(lambda: all(len(e.got) == len(f"conn {i} ") * 20
                            for i, e in enumerate(ends)))
    for i, e in enumerate(ends):
        assert bytes(e.got) == f"CONN {i} ".encode() * 20
    assert pair.server is not None and len(pair.server.streams) == 50
    for e in ends:
        assert e.transport is not None
        e.transport.close()
    for e in ends:
        assert await asyncio.wait_for(e.lost, 5) is None
    await until(lambda: not pair.server.streams and not pair.client.streams)  # type: ignore[union-attr]


async def test_a_half_close_reaches_the_other_end_which_can_still_answer(pair: Pair) -> None:
    pair.keep["open"] = True  # type: ignore[attr-defined]
    e = End()
    pair.client.open_stream(e, "10.0.0.1:80")
    assert e.transport is not None
    e.transport.write(b"question")
    e.transport.write_eof()
    await until(lambda: bool(pair.ends) and pair.ends[0].eof)
    callee = pair.ends[0]
    assert callee.got == b"question"
    assert callee.transport is not None
    callee.transport.write(b" and the answer after the client's end")
    callee.transport.close()
    assert await asyncio.wait_for(e.lost, 5) is None
    assert e.got == b"QUESTION and the answer after the client's end" and e.eof
    assert await asyncio.wait_for(callee.lost, 5) is None


async def test_an_abort_is_a_reset_at_the_other_end_and_the_link_goes_on(pair: Pair) -> None:
    a, b = End(), End()
    pair.client.open_stream(a, "10.0.0.1:80")
    pair.client.open_stream(b, "10.0.0.1:80")
    assert a.transport is not None and b.transport is not None
    a.transport.write(b"x")
    await until(lambda: len(pair.ends) == 2)
    a.transport.abort()
    assert await asyncio.wait_for(a.lost, 5) is None
    assert isinstance(await asyncio.wait_for(pair.ends[0].lost, 5), ConnectionResetError)
    b.transport.write(b"still here")
    await until(lambda: b.got == b"STILL HERE")


async def test_a_slow_reader_holds_back_its_writer_without_losing_or_buffering_much(
        pair: Pair) -> None:
    """The callee stops reading: its stream's window fills, the caller's protocol is
    paused (the proxy stops reading its client), and on resuming every byte arrives
    in order; meanwhile another stream of the link is not held up."""
    slow, callee = await stalled(pair)
    other = End()
    assert slow.transport is not None and callee.transport is not None
    body = os.urandom(3 * 1024 * 1024)
    for i in range(0, len(body), 65536):
        slow.transport.write(body[i:i + 65536])
    await until(lambda: slow.paused == 1)
    assert slow.transport.get_write_buffer_size() > HIGH_WATER
    await asyncio.sleep(0.1)
    server_stream = next(iter(pair.server.streams.values()))  # type: ignore[union-attr]
    held = sum(len(d) for d in server_stream.held)
    assert held <= STREAM_WINDOW and len(callee.got) <= 1
    pair.client.open_stream(other, "10.0.0.1:80")
    assert other.transport is not None
    other.transport.write(b"not blocked")
    await until(lambda: other.got == b"NOT BLOCKED")
    callee.transport.resume_reading()
    await until(lambda: len(callee.got) == 1 + len(body), timeout=15)
    assert bytes(callee.got) == b"!" + body
    await until(lambda: slow.resumed == 1)


async def test_losing_the_link_resets_every_connection_on_it(pair: Pair) -> None:
    ends = [End() for _ in range(3)]
    for e in ends:
        pair.client.open_stream(e, "10.0.0.1:80")
    await until(lambda: len(pair.ends) == 3)
    assert pair.server is not None and pair.server.transport is not None
    pair.server.transport.abort()
    for e in ends:
        assert isinstance(await asyncio.wait_for(e.lost, 5), ConnectionResetError)
    assert not pair.client.can_open()


async def test_going_away_lets_open_connections_finish_and_refuses_new_ones(
        pair: Pair) -> None:
    e = End()
    pair.client.open_stream(e, "10.0.0.1:80")
    assert e.transport is not None
    e.transport.write(b"before")
    await until(lambda: e.got == b"BEFORE")
    assert pair.server is not None
    pair.server.drain()  # the callee's proxy is stopping
    await until(lambda: not pair.client.can_open())
    e.transport.write(b" after")
    await until(lambda: e.got == b"BEFORE AFTER")
    e.transport.close()
    assert await asyncio.wait_for(e.lost, 5) is None
    await until(lambda: pair.client.closed)


async def test_the_link_refuses_what_is_not_http2(pair: Pair) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Link(False, accept=End), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = await asyncio.wait_for(r.read(), 5)  # SETTINGS, then a GOAWAY, then closed
    assert data[3] == 0x4 and b"not an HTTP/2 preface" in data
    w.close()
    server.close()


# --- against the h2 library --------------------------------------------------------------


class H2Callee(asyncio.Protocol):
    """A callee written with h2: answers each CONNECT with 200, echoes DATA in upper
    case, ends its side when the caller ends, and notes what it saw."""

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.requests: list[dict[bytes, bytes]] = []
        self.resets: list[int] = []
        self.ended: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                self.requests.append(dict(ev.headers))  # type: ignore[arg-type]
                self.conn.send_headers(ev.stream_id, [(":status", "200")])
            elif isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                # (a stream reset in the same read is closed already: nothing to echo to)
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    if ev.data:
                        self.conn.send_data(ev.stream_id, ev.data.upper())
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.append(ev.stream_id)
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    self.conn.end_stream(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.resets.append(ev.error_code)
        self.transport.write(self.conn.data_to_send())  # type: ignore[attr-defined]


async def test_the_callers_side_speaks_http2_that_h2_accepts() -> None:
    loop = asyncio.get_running_loop()
    callee = H2Callee()
    server = await loop.create_server(lambda: callee, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, link = await loop.create_connection(lambda: Link(True), "127.0.0.1", port)
    try:
        ends = [End() for _ in range(5)]
        for i, e in enumerate(ends):
            link.open_stream(e, "10.1.2.3:8080")
            assert e.transport is not None
            e.transport.write(b"hello %d" % i)
            e.transport.write_eof()
        for i, e in enumerate(ends):
            assert await asyncio.wait_for(e.lost, 5) is None
            assert e.got == b"HELLO %d" % i and e.eof
        assert callee.requests[0][b":method"] == b"CONNECT"
        assert callee.requests[0][b":authority"] == b"10.1.2.3:8080"
        assert sorted(callee.ended) == [1, 3, 5, 7, 9] and not callee.resets
        # A close before the callee has ended: END_STREAM, then "nothing more" (NO_ERROR).
        e = End()
        link.open_stream(e, "10.1.2.3:8080")
        assert e.transport is not None
        e.transport.write(b"bye")
        await until(lambda: e.got == b"BYE")
        e.transport.close()
        await until(lambda: callee.resets == [0])
        assert not link.closed and link.can_open()
    finally:
        link.abort()
        server.close()


async def test_the_callees_side_serves_an_h2_caller(pair: Pair) -> None:
    """h2 opens CONNECT streams on the callee's side of a link and reads the echo."""
    assert pair.server is not None
    loop = asyncio.get_running_loop()
    box: list[End] = []

    def accept() -> End:
        e = End(echo=True)
        box.append(e)
        return e

    server = await loop.create_server(lambda: Link(False, accept=accept), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sids = []
    for i in range(3):
        sid = conn.get_next_available_stream_id()
        sids.append(sid)
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "10.0.0.9:80")])
        conn.send_data(sid, b"ping %d" % i, end_stream=True)
    w.write(conn.data_to_send())
    got: dict[int, bytes] = {s: b"" for s in sids}
    status: dict[int, bytes] = {}
    ended: set[int] = set()
    while len(ended) < 3:
        data = await asyncio.wait_for(r.read(65536), 5)
        assert data, "the link closed"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status[ev.stream_id] = dict(ev.headers)[b":status"]  # type: ignore[arg-type]
            elif isinstance(ev, h2.events.DataReceived):
                got[ev.stream_id] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
        w.write(conn.data_to_send())
    assert status == dict.fromkeys(sids, b"200")
    assert [got[s] for s in sids] == [b"PING 0", b"PING 1", b"PING 2"]
    assert all(e.eof for e in box)
    w.close()
    server.close()


async def test_an_end_written_behind_queued_bytes_then_a_close_still_ends_the_stream(
        pair: Pair) -> None:
    """write_eof() and close() while the window holds bytes back: the bytes, then the
    end, reach the callee once it reads again, and both sides finish cleanly."""
    e, callee = await stalled(pair)
    assert e.transport is not None and callee.transport is not None
    body = os.urandom(STREAM_WINDOW * 2)
    e.transport.write(body)
    e.transport.write_eof()
    e.transport.close()
    await asyncio.sleep(0.05)
    callee.transport.resume_reading()
    await until(lambda: callee.eof)
    assert bytes(callee.got) == b"!" + body
    assert await asyncio.wait_for(callee.lost, 5) is None
    assert await asyncio.wait_for(e.lost, 5) is None
