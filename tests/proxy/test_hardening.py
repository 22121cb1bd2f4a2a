"""What the proxy refuses before anything reaches the upstream, what it times out,
and what it counts: each case an attacker or a careless client can bring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from proxykit import Client, Upstream, read_response
from proxymesh import FAST, proxy_config

from meshtui.errors import UsageError
from meshtui.model.inventory import Address
from meshtui.proxy import http1
from meshtui.proxy.config import Timeouts
from meshtui.proxy.prom_metrics import metrics_text
from meshtui.proxy.server import ProxyServer


@dataclass
class RawApp:
    """An upstream that records every byte it gets, per connection, and answers 200
    as soon as it has a request head (bodies are not waited for), or says nothing
    (``answer=False``), or echoes (``echo=True``)."""

    answer: bool = True
    echo: bool = False
    conns: list[bytearray] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)
    server: asyncio.AbstractServer | None = None
    port: int = 0

    async def start(self) -> RawApp:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def received(self) -> bytes:
        return b"".join(bytes(c) for c in self.conns)

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        got = bytearray()
        self.conns.append(got)
        self.ended.append(False)
        i = len(self.ended) - 1
        answered = False
        try:
            while data := await r.read(65536):
                got += data
                if self.echo:
                    w.write(data)
                elif self.answer and not answered and b"\r\n\r\n" in got:
                    answered = True
                    w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except ConnectionError:
            pass
        finally:
            self.ended[i] = True
            w.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@contextlib.asynccontextmanager
async def proxied(app: RawApp | Upstream, **kw: object) -> AsyncIterator[ProxyServer]:
    proxy = ProxyServer(proxy_config(app.port, **kw))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop(grace=0.2)
        await app.close()


def failures(proxy: ProxyServer) -> dict[str, int]:
    """``meshtui_connection_failures_total`` as /metrics shows it, by reason."""
    out: dict[str, int] = {}
    for line in metrics_text(proxy.telemetry).decode().splitlines():
        if line.startswith("meshtui_connection_failures_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0) + int(float(line.rsplit(" ", 1)[1]))
    return out


async def answer_of(addr: tuple[str, int], raw: bytes) -> tuple[int, str, bytes]:
    """(status, the proxy's reason, what followed until the close)."""
    r, w = await asyncio.open_connection(*addr)
    w.write(raw)
    resp = await asyncio.wait_for(read_response(r), 3)
    rest = await asyncio.wait_for(r.read(), 3)
    w.close()
    return resp.status, resp.header("meshtui-proxy-error") or "", rest


# --- 1. nothing of a refused request reaches the upstream ---------------------------

@pytest.mark.parametrize(("raw", "why"), [
    (b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\nxxxx", "final"),
    (b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
     "malformed"),
    (b"GET / HTTP/1.1\r\n\r\n", "no Host"),
    (b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", "more than one Host"),
    (b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     "HTTP/1.0"),
    (b"get / HTTP/1.1\r\nhost: a\r\n" + b"x: y\r\n" * 150 + b"\r\n", "malformed"),
    (b"GET /a b HTTP/1.1\r\nhost: a\r\n\r\n", "malformed"),
], ids=["te-gzip", "bad-chunk-size", "no-host", "two-hosts", "http10-te", "lowercase-method",
        "space-in-target"])
async def test_a_refused_request_sends_no_byte_upstream(raw: bytes, why: str) -> None:
    app = await RawApp().start()
    async with proxied(app) as proxy:
        assert proxy.inbound_address is not None
        # A pooled upstream connection is ready: the proxy could write at once.
        warm = await Client.connect(proxy.inbound_address)
        assert (await warm.request("GET", "/warm")).status == 200
        before = len(app.received)
        await warm.close()
        status, reason, _ = await answer_of(proxy.inbound_address, raw)
        assert status == 400 and why in reason
        await asyncio.sleep(0.05)
        assert app.received[before:] == b""


async def test_a_bad_chunk_after_the_head_closes_both_sides() -> None:
    """The head went upstream (it was fine); the body turns out malformed later: the
    upstream connection is cut before it sees the bad bytes, the client gets 400."""
    app = await RawApp(answer=False).start()
    async with proxied(app) as proxy:
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        for _ in range(100):
            if app.received.endswith(b"hello\r\n"):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        w.write(b"zz\r\n")
        resp = await asyncio.wait_for(read_response(r), 3)
        assert resp.status == 400
        assert await asyncio.wait_for(r.read(), 3) == b""
        for _ in range(100):
            if app.ended[0]:
                break
            await asyncio.sleep(0.01)
        assert app.ended == [True]
        assert b"zz" not in app.received


async def test_a_request_line_with_doubled_spaces_goes_on_written_anew() -> None:
    """Parsed on word boundaries as RFC 9112 §3 allows, then written with single
    spaces: the upstream cannot split it differently."""
    app = await RawApp().start()
    async with proxied(app) as proxy:
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"GET  /x  HTTP/1.1\r\nhost: a\r\n\r\n")
        resp = await asyncio.wait_for(read_response(r), 3)
        w.close()
        assert resp.status == 200
        assert app.received.startswith(b"GET /x HTTP/1.1\r\n")


async def test_http10_without_host_still_passes() -> None:
    app = await RawApp().start()
    async with proxied(app) as proxy:
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"GET /old HTTP/1.0\r\n\r\n")
        resp = await asyncio.wait_for(read_response(r), 3)
        w.close()
        assert resp.status == 200
        assert app.received.startswith(b"GET /old HTTP/1.1\r\nhost: 127.0.0.1:")


# --- 2. what is clearly not HTTP stays opaque ------------------------------------------

@pytest.mark.parametrize("first", [b"get key\r\n", b"SET k v\r\n", b"\x00\x01\x02binary"])
async def test_text_protocols_that_are_not_http_pass_unchanged(first: bytes) -> None:
    app = await RawApp(echo=True).start()
    async with proxied(app) as proxy:
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(first)
        assert await asyncio.wait_for(r.readexactly(len(first)), 3) == first
        w.close()
        assert app.received == first


@pytest.mark.parametrize(("prefix", "kind"), [
    (b"get / HTTP/1.1\r\n", http1.HTTP),
    (b"GET  / HTTP/1.1\r\n", http1.HTTP),
    (b"GET /a b HTTP/1.1\r\n", http1.HTTP),
    (b"options * HTTP/1.1\r\n", http1.HTTP),
    (b"get http://x/ HTTP/1.1\r\n", http1.HTTP),
    (b"get /", http1.HTTP),  # no need to wait for the line's end
    (b"get", http1.NEED_MORE),
    (b"get key\r\n", http1.OPAQUE),
    (b"SET k v\r\n", http1.OPAQUE),
    (b"*1\r\n$4\r\nPING\r\n", http1.OPAQUE),
])
def test_detection_of_malformed_http(prefix: bytes, kind: int) -> None:
    assert http1.detect(prefix) == kind


def test_a_trickled_method_is_http_when_the_detect_timeout_ends() -> None:
    """A client sending "G", then nothing for a second, is an HTTP client being slow:
    its head gets the header timeout, not an opaque tunnel to the app."""
    assert http1.detect(b"G", timed_out=True) == http1.HTTP
    assert http1.detect(b"\x16\x03", timed_out=True) == http1.OPAQUE


# --- 4. no exception escapes a protocol callback --------------------------------------

async def test_a_port_of_unicode_digits_is_a_malformed_authority(caplog) -> None:  # type: ignore[no-untyped-def]
    up = await Upstream().start()
    async with proxied(up) as proxy:
        assert proxy.outbound_address is not None
        r, w = await asyncio.open_connection(*proxy.outbound_address)
        good = f"GET /hello HTTP/1.1\r\nhost: 127.0.0.1:{up.port}\r\n\r\n".encode()
        w.write(good + b"GET / HTTP/1.1\r\nhost: svc:\xb9\r\n\r\n")  # superscript one
        first = await asyncio.wait_for(read_response(r), 3)
        second = await asyncio.wait_for(read_response(r), 3)
        assert (first.status, second.status) == (200, 400)
        assert "malformed authority" in (second.header("meshtui-proxy-error") or "")
        assert await asyncio.wait_for(r.read(), 3) == b""
    assert [x for x in caplog.records if x.levelno >= logging.ERROR] == []
    assert http1.split_authority("svc:\u00b9") is None
    assert http1.split_authority("svc:\u0661\u0662") is None  # Arabic-Indic digits


async def test_a_failing_codec_costs_only_its_connection(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from meshtui.proxy import http1_server

    up = await Upstream().start()
    async with proxied(up) as proxy:
        assert proxy.inbound_address is not None
        good = await Client.connect(proxy.inbound_address)
        assert (await good.request("GET", "/hello")).status == 200

        def boom(self, data):  # type: ignore[no-untyped-def]
            raise RuntimeError("a bug")

        monkeypatch.setattr(http1_server.Http1Server, "feed", boom)
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"GET /hello HTTP/1.1\r\nhost: a\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r.read(), 3) == b""
        monkeypatch.undo()
        assert (await good.request("GET", "/hello")).status == 200
        assert failures(proxy) == {"internal_error": 1}
    assert [x for x in caplog.records if x.levelno >= logging.ERROR] == []


# --- 5. time limits where a peer can stall ----------------------------------------

async def test_a_head_trickled_from_its_first_byte_gets_408() -> None:
    app = await RawApp().start()
    async with proxied(app) as proxy:  # header timeout 0.6 s, detect 0.3 s
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def trickle() -> None:
            w.write(b"G")
            await asyncio.sleep(FAST.detect + 0.1)  # past the detect timeout
            for b in b"ET /hello HTTP/1.1\r\nhost: a\r\nx-slow: " + b"z" * 100:
                w.write(bytes([b]))
                await asyncio.sleep(0.05)

        feeder = asyncio.create_task(trickle())
        resp = await asyncio.wait_for(read_response(r), 3)
        took = loop.time() - t0
        feeder.cancel()
        assert resp.status == 408
        assert took < FAST.header_read + 0.4  # from the first byte, not from detection
        assert app.received == b""


async def test_silent_client_to_a_silent_server_is_closed() -> None:
    app = await RawApp(answer=False).start()
    async with proxied(app) as proxy:
        assert proxy.inbound_address is not None
        r, _w = await asyncio.open_connection(*proxy.inbound_address)
        t0 = asyncio.get_running_loop().time()
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r.read(), 3) == b""
        took = asyncio.get_running_loop().time() - t0
        assert FAST.header_read < took < FAST.detect + FAST.header_read + 0.5
        assert failures(proxy) == {"silent_timeout": 1}
        for _ in range(100):
            if app.ended and app.ended[0]:
                break
            await asyncio.sleep(0.01)
        assert app.ended == [True]  # its upstream connection went too


async def test_an_idle_opaque_connection_is_closed_after_the_idle_timeout() -> None:
    app = await RawApp(echo=True).start()
    t = Timeouts(detect=0.3, header_read=0.6, idle=5.0, connect=1.0, response=0.8,
                 drain=1.0, opaque_idle=0.7)
    async with proxied(app, timeouts=t) as proxy:
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        for _ in range(4):  # busy for longer than the idle timeout: kept open
            w.write(b"\x00ping")
            assert await asyncio.wait_for(r.readexactly(5), 2) == b"\x00ping"
            await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r.read(), 3) == b""
        assert 0.3 < loop.time() - t0 < 0.7 + 0.5
        assert failures(proxy) == {"idle_timeout": 1}


async def test_a_slow_upload_gets_408_and_frees_its_slot() -> None:
    up = await Upstream().start()
    t = Timeouts(detect=0.3, header_read=0.6, idle=5.0, connect=1.0, response=5.0,
                 drain=1.0, body=0.5, min_body_rate=1000)
    async with proxied(up, timeouts=t, max_in_flight=1) as proxy:
        assert proxy.inbound_address is not None and proxy.ctx is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"POST /count HTTP/1.1\r\nhost: a\r\ncontent-length: 100000\r\n\r\n")

        async def drip() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    w.write(b"x" * 10)
                    await asyncio.sleep(0.1)

        feeder = asyncio.create_task(drip())
        resp = await asyncio.wait_for(read_response(r), 3)
        feeder.cancel()
        assert resp.status == 408 and "body" in (resp.header("meshtui-proxy-error") or "")
        assert proxy.ctx.in_flight == 0
        # A fast upload of a megabyte passes, with the one in-flight slot free again.
        c = await Client.connect(proxy.inbound_address)
        ok = await c.request("POST", "/count", body=b"y" * (1 << 20))
        assert (ok.status, ok.body) == (200, str(1 << 20).encode())


async def test_at_the_connection_cap_idle_connections_make_room() -> None:
    up = await Upstream().start()
    async with proxied(up, max_connections=10) as proxy:
        assert proxy.inbound_address is not None
        idle = []
        for _ in range(10):  # keep-alive connections between requests
            c = await Client.connect(proxy.inbound_address)
            assert (await c.request("GET", "/hello")).status == 200
            idle.append(c)
        fresh = await Client.connect(proxy.inbound_address)
        assert (await fresh.request("GET", "/hello")).status == 200
        assert failures(proxy) == {"idle_closed_for_room": 1}
        # One idle connection was closed for it, the others still serve.
        await asyncio.sleep(0.1)
        closed = [c for c in idle if c.reader.at_eof()]
        assert len(closed) == 1
        for c in idle:
            if c not in closed:
                assert (await c.request("GET", "/hello")).status == 200


async def test_over_the_connection_cap_busy_connections_refuse_new_ones() -> None:
    up = await Upstream().start()
    async with proxied(up, max_connections=5) as proxy:
        assert proxy.inbound_address is not None
        busy = []
        for _ in range(5):
            c = await Client.connect(proxy.inbound_address)
            await c.send_raw(b"GET /slow?ms=600 HTTP/1.1\r\nhost: a\r\n\r\n")
            busy.append(c)
        await asyncio.sleep(0.1)
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"GET /hello HTTP/1.1\r\nhost: a\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r.read(), 2) == b""
        assert failures(proxy) == {"max_connections": 1}
        for c in busy:  # nothing under way was disturbed
            assert (await asyncio.wait_for(read_response(c.reader), 3)).status == 200


# --- 6. loops --------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["localhost", "127.1", "0.0.0.0", "2130706433",
                                      "127.0.0.1"])
async def test_every_spelling_of_the_proxy_itself_is_a_loop(spelling: str) -> None:
    up = await Upstream().start()
    async with proxied(up) as proxy:
        assert proxy.outbound_address is not None and proxy.ctx is not None
        port = proxy.outbound_address[1]
        for raw in (f"GET / HTTP/1.1\r\nhost: {spelling}:{port}\r\n\r\n",
                    f"GET http://{spelling}:{port}/ HTTP/1.1\r\nhost: x\r\n\r\n",
                    f"CONNECT {spelling}:{port} HTTP/1.1\r\nhost: {spelling}:{port}\r\n\r\n"):
            r, w = await asyncio.open_connection(*proxy.outbound_address)
            w.write(raw.encode())
            resp = await asyncio.wait_for(read_response(r), 3)
            w.close()
            assert resp.status == 508
            assert resp.header("meshtui-proxy-error") == "the request would loop back to this proxy"
        await asyncio.sleep(0.05)
        assert len(proxy.ctx.conns) == 0  # nothing kept
        assert not proxy.ctx.pool.hops


async def test_a_client_sharing_a_local_port_with_the_proxys_own_connection_is_served() -> None:
    """The kernel gives one local port to connections bound for different places, so
    a client may come from the very address of one of the proxy's upstream
    connections: only one that also arrives where that connection went is a loop."""
    up = await Upstream().start()
    async with proxied(up) as proxy:
        assert proxy.inbound_address is not None and proxy.ctx is not None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        here = sock.getsockname()
        # One of the proxy's connections from this address, to the app: not here.
        proxy.ctx.pool.hops[(here[0], here[1])] = ("127.0.0.1", up.port)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, proxy.inbound_address)
        r, w = await asyncio.open_connection(sock=sock)
        w.write(b"GET /hello HTTP/1.1\r\nhost: a\r\n\r\n")
        assert (await asyncio.wait_for(read_response(r), 3)).status == 200
        w.close()
        assert "loop" not in failures(proxy)
        # Had it gone to the same place, it would be the proxy's own connection.
        sock2 = socket.socket()
        sock2.bind(("127.0.0.1", 0))
        there = sock2.getsockname()
        proxy.ctx.pool.hops[(there[0], there[1])] = proxy.inbound_address
        sock2.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock2, proxy.inbound_address)
        r, w = await asyncio.open_connection(sock=sock2)
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r.read(), 3) == b""
        w.close()
        assert failures(proxy).get("loop") == 1


async def test_an_app_address_that_is_the_proxy_itself_is_refused_at_start() -> None:
    from proxymesh import free_port

    port = free_port()
    proxy = ProxyServer(proxy_config(None, inbound=Address("127.0.0.1", port),
                                     app=Address("localhost", port)))
    with pytest.raises(UsageError, match="is this proxy's own listener"):
        await proxy.start()
    # Nothing stayed bound.
    other = ProxyServer(proxy_config(None, inbound=Address("127.0.0.1", port)))
    await other.start()
    await other.stop(grace=0.1)


# --- 8. failures of opaque connections are counted ------------------------------------

async def test_an_opaque_connection_to_a_dead_app_is_a_counted_failure() -> None:
    from proxymesh import free_port

    proxy = ProxyServer(proxy_config(free_port()))  # nothing listens there
    await proxy.start()
    try:
        assert proxy.inbound_address is not None
        r, w = await asyncio.open_connection(*proxy.inbound_address)
        w.write(b"\x00\x01binary")
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(r.read(), 3) == b""
        assert failures(proxy) == {"connect_refused": 1}
        text = metrics_text(proxy.telemetry).decode()
        assert ('meshtui_connection_failures_total{direction="inbound",'
                'reason="connect_refused"} 1.0') in text
    finally:
        await proxy.stop(grace=0.2)
