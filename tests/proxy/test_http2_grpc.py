"""gRPC through the proxy: grpcio's asyncio client and server on both ends of a real
proxy, every kind of call, every status code, deadlines and cancellation — as
metrics, classification and tap see them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import grpc
import hpack
import pytest
from grpckit import SERVICE, GrpcApp, channel, method
from proxymesh import FAST, Mesh, free_port, meshed, proxy_config
from test_http2_limits import frames_of

from meshtui.model.tap import GRPC_FAILURES
from meshtui.proxy.config import Timeouts
from meshtui.proxy.h2frames import (
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PREFACE,
    SETTINGS,
    FrameReader,
    frame,
)
from meshtui.proxy.http1_server import Http1Server
from meshtui.proxy.http2 import H2Relay
from meshtui.proxy.prom_metrics import metrics_text
from meshtui.proxy.server import ProxyServer
from meshtui.proxy.tap_hub import Subscriber
from meshtui.v1 import common_pb2

#: A client's first bytes in a tunnel may come late on a loaded machine: given the
#: default detect timeout rather than the quick one, so a slow client is not relayed
#: unread.
PATIENT = replace(FAST, detect=Timeouts().detect)


class GrpcMesh(Mesh[GrpcApp]):
    """A gRPC server and the proxy in front of it."""

    def responses(self) -> dict[tuple[int, bool], tuple[int, dict[int, int] | None]]:
        out = {}
        for r in self.proxy.telemetry.routes():
            for key, st in r.responses.items():
                out[key] = (st.count, st.grpc)
        return out

    def requests(self) -> int:
        return sum(r.requests for r in self.proxy.telemetry.routes())

    def tap(self) -> Subscriber:
        return self.proxy.telemetry.hub.subscribe()

    def events(self, sub: Subscriber) -> list[common_pb2.TapEvent]:
        return list(self.proxy.telemetry.hub.take_batch(sub).events)

    def ends(self, sub: Subscriber) -> list[common_pb2.ResponseEnd]:
        return [e.response_end for e in self.events(sub) if e.HasField("response_end")]


@pytest.fixture
async def gmesh() -> AsyncIterator[GrpcMesh]:
    async with meshed(await GrpcApp().start()) as m:
        yield GrpcMesh(m.app, m.proxy)


async def wait_for(cond: Callable[[], Any], timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def by_stream(evs: list[common_pb2.TapEvent]) -> dict[int, list[common_pb2.TapEvent]]:
    out: dict[int, list[common_pb2.TapEvent]] = {}
    for e in evs:
        out.setdefault(e.id.stream, []).append(e)
    return out


async def test_unary_calls_are_requests_with_metrics_and_tap(gmesh: GrpcMesh) -> None:
    sub = gmesh.tap()
    async with channel(gmesh.inbound) as ch:
        call = method(ch, "Unary")
        for i in range(5):
            assert await call(b"hello %d" % i, timeout=5) == b"HELLO %d" % i
    await wait_for(lambda: gmesh.responses())
    assert gmesh.requests() == 5
    assert gmesh.responses() == {(200, True): (5, {0: 5})}
    streams = by_stream(gmesh.events(sub))
    assert len(streams) == 5
    for evs in streams.values():
        req, rsp, end = evs
        assert req.request_init.method == "POST"
        assert req.request_init.path == f"/{SERVICE}/Unary"
        assert req.request_init.scheme == "http"
        assert req.request_init.authority == f"127.0.0.1:{gmesh.inbound[1]}"
        names = {h.name for h in req.request_init.headers}
        assert "content-type" in names and not any(n.startswith(":") for n in names)
        assert rsp.response_init.http_status == 200
        assert end.response_end.WhichOneof("eos") == "grpc_status_code"
        assert end.response_end.grpc_status_code == 0
        assert end.response_end.response_bytes == 5 + len(b"HELLO 0")  # gRPC's prefix + message
    # Each call is one stream on one connection: one connection, stream numbers 1..5.
    assert sorted(streams) == [1, 2, 3, 4, 5]
    [tcp] = gmesh.proxy.telemetry.tcp_series()
    assert tcp.open_total == 1


async def test_every_status_code_is_counted_and_classified(gmesh: GrpcMesh) -> None:
    sub = gmesh.tap()
    async with channel(gmesh.inbound) as ch:
        call = method(ch, "Status")
        for code in range(17):
            try:
                await call(str(code).encode(), timeout=5)
                got = 0
            except grpc.aio.AioRpcError as e:
                got = e.code().value[0]
                assert e.details() == f"status {code} as asked"
            assert got == code
    await wait_for(lambda: sum(n for n, _ in gmesh.responses().values()) == 17)
    failures = {c: 1 for c in GRPC_FAILURES}
    successes = {c: 1 for c in range(17) if c not in GRPC_FAILURES}
    assert gmesh.responses() == {(200, True): (12, successes), (200, False): (5, failures)}
    # Tap: each stream's end carries its code (trailers-only answers included).
    ends = gmesh.ends(sub)
    assert sorted(e.grpc_status_code for e in ends) == list(range(17))
    # Prometheus: Linkerd's names, a grpc_status label on gRPC responses.
    text = metrics_text(gmesh.proxy.telemetry).decode()
    lines = [ln for ln in text.splitlines() if ln.startswith("response_total{")]
    assert len(lines) == 17
    for code in range(17):
        [line] = [ln for ln in lines if f'grpc_status="{code}"' in ln]
        cls = "failure" if code in GRPC_FAILURES else "success"
        assert f'classification="{cls}"' in line and 'status_code="200"' in line
        assert line.endswith(" 1.0")


async def test_streaming_calls_of_every_kind(gmesh: GrpcMesh) -> None:
    sub = gmesh.tap()
    async with channel(gmesh.inbound) as ch:
        got = [m async for m in ch.unary_stream(f"/{SERVICE}/ServerStream")(b"20,1000",
                                                                             timeout=5)]
        assert len(got) == 20 and all(len(m) == 1000 for m in got)

        async def parts() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b"z" * 500

        assert await ch.stream_unary(f"/{SERVICE}/ClientStream")(parts(), timeout=5) == b"15000"
        bidi = ch.stream_stream(f"/{SERVICE}/Bidi")(timeout=5)
        for i in range(10):
            await bidi.write(b"ping %d" % i)
            assert await bidi.read() == b"ping %d" % i
        await bidi.done_writing()
        assert await bidi.read() == grpc.aio.EOF
        assert await bidi.code() == grpc.StatusCode.OK
    await wait_for(lambda: gmesh.responses().get((200, True), (0,))[0] == 3)
    streams = by_stream(gmesh.events(sub))
    paths = {s: evs[0].request_init.path for s, evs in streams.items()}
    sizes = {paths[s]: evs[-1].response_end.response_bytes for s, evs in streams.items()}
    assert sizes == {f"/{SERVICE}/ServerStream": 20 * 1005,
                     f"/{SERVICE}/ClientStream": 5 + 5,
                     f"/{SERVICE}/Bidi": sum(5 + len(b"ping %d" % i) for i in range(10))}


async def test_deadline_exceeded_is_a_failure(gmesh: GrpcMesh) -> None:
    sub = gmesh.tap()
    async with channel(gmesh.inbound) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await method(ch, "Slow")(b"2", timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await wait_for(lambda: gmesh.responses())
        # The connection goes on serving.
        assert await method(ch, "Unary")(b"after", timeout=5) == b"AFTER"
    await wait_for(lambda: len(gmesh.responses()) == 2)
    failed = {k: v for k, v in gmesh.responses().items() if not k[1]}
    assert sum(n for n, _ in failed.values()) == 1
    [end, _] = gmesh.ends(sub)
    # Whichever end gave up first: the server's DEADLINE_EXCEEDED, or the client's reset.
    assert end.grpc_status_code == 4 or end.reset_error_code == 8


async def test_cancelled_call_is_a_reset_stream(gmesh: GrpcMesh) -> None:
    sub = gmesh.tap()
    async with channel(gmesh.inbound) as ch:
        call = ch.unary_stream(f"/{SERVICE}/ServerStream")(b"100000,1000", timeout=10)
        assert len(await call.read()) == 1000
        call.cancel()
        await wait_for(lambda: gmesh.responses())
    assert gmesh.responses() == {(200, False): (1, None)}
    [end] = gmesh.ends(sub)
    assert end.WhichOneof("eos") == "reset_error_code" and end.reset_error_code == 8  # CANCEL
    assert end.response_bytes >= 1005


async def test_outbound_routes_by_authority_and_both_proxies_see_the_call() -> None:
    """Explicit mode: the client's proxy routes each connection by the first
    stream's :authority; the app's proxy sees the same call inbound."""
    app = await GrpcApp().start()
    inner = ProxyServer(proxy_config(app.port))
    await inner.start()
    assert inner.inbound_address is not None
    outer = ProxyServer(proxy_config(None, pod="client-0", deployment="client"))
    await outer.start()
    assert outer.outbound_address is not None
    try:
        target = f"127.0.0.1:{inner.inbound_address[1]}"
        async with channel(outer.outbound_address, authority=target) as ch:
            for _ in range(3):
                assert await method(ch, "Unary")(b"x", timeout=5) == b"X"
        for proxy in (outer, inner):
            await wait_for(lambda p=proxy: sum(r.requests for r in p.telemetry.routes()) == 3)
            [route] = proxy.telemetry.routes()
            assert route.authority == target
            assert {k: v.count for k, v in route.responses.items()} == {(200, True): 3}
    finally:
        await outer.stop(grace=0.2)
        await inner.stop(grace=0.2)
        await app.close()


async def test_streams_past_the_cap_are_relayed_and_counted_untracked(gmesh: GrpcMesh) -> None:
    assert gmesh.proxy.ctx is not None
    gmesh.proxy.ctx.max_streams = 3
    async with channel(gmesh.inbound) as ch:
        slow = method(ch, "Slow")
        results = await asyncio.gather(*(slow(b"0.3", timeout=5) for _ in range(10)))
        assert results == [b"slept"] * 10
        # Once those have ended, new streams are tracked again.
        assert await method(ch, "Unary")(b"y", timeout=5) == b"Y"
    tel = gmesh.proxy.telemetry
    assert tel.untracked_streams == 7
    assert gmesh.requests() == 4
    assert gmesh.responses() == {(200, True): (4, {0: 4})}


async def test_app_down_is_unavailable_and_counted() -> None:
    """Nothing listens at the app's address: the client is refused in HTTP/2 (its
    call fails UNAVAILABLE), and the proxy counts the failed connection."""
    proxy = ProxyServer(proxy_config(free_port()))
    await proxy.start()
    try:
        async with channel(proxy.inbound_address) as ch:  # type: ignore[arg-type]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await method(ch, "Unary")(b"x", timeout=2)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proxy.telemetry.http2_errors.get("connect", 0) >= 1
        assert proxy.ctx is not None and proxy.ctx.failures >= 1
    finally:
        await proxy.stop(grace=0.2)


def alive(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def test_grpc_through_a_connect_tunnel_is_read_as_http2(gmesh: GrpcMesh) -> None:
    """gRPC told to use the proxy as its HTTP proxy opens a CONNECT tunnel and speaks
    HTTP/2 in it: the calls are counted one by one, beside the CONNECT itself."""
    client = ProxyServer(proxy_config(None, pod="client-0", deployment="client",
                                      timeouts=PATIENT))
    await client.start()
    assert client.outbound_address is not None
    gc.collect()
    gc.disable()
    try:
        host, port = client.outbound_address
        # A channel of its own subchannels, so that closing it closes the tunnel
        # rather than leaving it to a process-wide pool.
        opts = [
            ("grpc.http_proxy", f"http://{host}:{port}"),
            ("grpc.enable_retries", 0),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        target = f"127.0.0.1:{gmesh.app.port}"
        async with grpc.aio.insecure_channel(target, options=opts) as ch:
            for code in (0, 14, 5):
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await method(ch, "Status")(str(code).encode(), timeout=5)
        tel = client.telemetry
        await wait_for(lambda: sum(r.requests for r in tel.routes()) == 4, timeout=15)
        [route] = tel.routes()
        assert route.authority == target
        by_key = {k: (v.count, v.grpc) for k, v in route.responses.items()}
        # The CONNECT: 200 when the tunnel opened, ended when the channel closed.
        await wait_for(lambda: route.responses[(200, True)].count == 3, timeout=15)
        assert by_key[(200, False)] == (1, {14: 1})
        assert route.responses[(200, True)].grpc == {0: 1, 5: 1}
        assert tel.http2_errors == {}
        # The connection's codecs, HTTP/1 (the CONNECT) and HTTP/2, went with it.
        assert client.ctx is not None
        await wait_for(lambda: not client.ctx.conns, timeout=15)  # type: ignore[union-attr]
        assert alive(Http1Server) == 0 and alive(H2Relay) == 0
    finally:
        gc.enable()
        await client.stop(grace=0.2)


async def test_a_tunnels_server_settings_ahead_of_the_clients_preface_wait_for_it() -> None:
    """An HTTP/2 server sends its SETTINGS the moment it accepts, so behind a CONNECT
    they may reach the proxy before the client's preface: the connection is still
    read as HTTP/2 (its request counted) and the client gets the SETTINGS."""
    got = asyncio.Event()

    async def server(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64"))  # at once
        await r.readexactly(len(PREFACE))
        got.set()
        w.write(frame(HEADERS, END_HEADERS | END_STREAM, 1,
                      hpack.Encoder().encode([(b":status", b"200")])))
        await w.drain()
        await r.read()
        w.close()

    srv = await asyncio.start_server(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = ProxyServer(proxy_config(None, pod="client-0", deployment="client",
                                      timeouts=PATIENT))
    await client.start()
    assert client.outbound_address is not None
    try:
        r, w = await asyncio.open_connection(*client.outbound_address)
        w.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n"
                .encode())
        assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 3)).startswith(
            b"HTTP/1.1 200")
        await asyncio.sleep(0.3)  # the server's SETTINGS are at the proxy by now
        block = hpack.Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"),
                                        (b":path", b"/x"), (b":authority", b"app")])
        w.write(PREFACE + frame(SETTINGS, 0, 0)
                + frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        await asyncio.wait_for(got.wait(), 3)
        seen = b""
        while HEADERS not in [f[0] for f in frames_of(seen)]:
            seen += await asyncio.wait_for(r.read(4096), 3)
        assert frames_of(seen)[0][:3] == (SETTINGS, 0, 0)
        tel = client.telemetry
        await wait_for(lambda: sum(r.requests for r in tel.routes()) == 2)  # CONNECT, GET
        assert {k[0] for rt in tel.routes() for k in rt.responses} == {200}
        w.close()
    finally:
        await client.stop(grace=0.2)
        srv.close()


async def test_closed_http2_connections_are_freed_at_once(gmesh: GrpcMesh) -> None:
    """As for HTTP/1 (test_http_path): no reference cycle outlives a connection."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            async with channel(gmesh.inbound) as ch:
                assert await method(ch, "Unary")(b"x", timeout=5) == b"X"
        assert gmesh.proxy.ctx is not None
        await wait_for(lambda: not gmesh.proxy.ctx.conns)  # type: ignore[union-attr]
        assert alive(H2Relay) == 0
        assert alive(FrameReader) == 0
    finally:
        gc.enable()


async def test_stopping_proxy_lets_calls_under_way_finish() -> None:
    """Draining: a call in flight gets its whole answer, then the connection ends with
    GOAWAY (NO_ERROR) rather than a cut."""
    app = await GrpcApp().start()
    proxy = ProxyServer(proxy_config(app.port))
    await proxy.start()
    try:
        async with channel(proxy.inbound_address) as ch:  # type: ignore[arg-type]
            call = asyncio.ensure_future(method(ch, "Slow")(b"0.3", timeout=5))
            await wait_for(lambda: sum(r.requests for r in proxy.telemetry.routes()) == 1)
            await asyncio.gather(proxy.stop(grace=3), call)
            assert call.result() == b"slept"
        [route] = proxy.telemetry.routes()
        assert {k: v.count for k, v in route.responses.items()} == {(200, True): 1}
    finally:
        await proxy.stop(grace=0.2)
        await app.close()
