"""HTTP/2 clients that misbehave: each connection is closed with a GOAWAY saying why,
the event is counted, and the proxy goes on serving every other connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import hpack
import pytest
from grpckit import GrpcApp, channel, method
from proxymesh import Mesh, meshed, proxy_config

from meshtui.proxy import http1
from meshtui.proxy.h2frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    frame,
)
from meshtui.proxy.prom_metrics import metrics_text
from meshtui.proxy.server import ProxyServer

PROTOCOL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x1, 0x6, 0x9, 0xB


@pytest.fixture
async def gmesh() -> AsyncIterator[Mesh[GrpcApp]]:
    async with meshed(await GrpcApp().start()) as m:
        yield m


def request_block(enc: hpack.Encoder, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    return enc.encode([(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/t.Svc/Unary"),
                       (b":authority", b"app"), (b"content-type", b"application/grpc"),
                       *(extra or [])])


def frames_of(data: bytes) -> list[tuple[int, int, int, bytes]]:
    out = []
    pos = 0
    while len(data) - pos >= 9:
        n = int.from_bytes(data[pos:pos + 3], "big")
        out.append((data[pos + 3], data[pos + 4],
                    int.from_bytes(data[pos + 5:pos + 9], "big") & 0x7FFFFFFF,
                    data[pos + 9:pos + 9 + n]))
        pos += 9 + n
    return out


async def session(addr: tuple[str, int], payload: bytes, preface: bytes = PREFACE) -> bytes:
    """Sends ``payload`` after the preface and a SETTINGS; everything the proxy
    answers, up to its close."""
    r, w = await asyncio.open_connection(*addr)
    try:
        w.write(preface + frame(SETTINGS, 0, 0) + payload)
        return await asyncio.wait_for(r.read(-1), 5)
    finally:
        w.close()


def _bad_hpack() -> bytes:
    # An indexed field far past both tables.
    return frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\x0f")


def _huge_headers() -> bytes:
    # Small on the wire, over 64 KiB decoded: one 3,000-byte field, then 24 references
    # to it in the dynamic table.
    enc = hpack.Encoder()
    block = request_block(enc, [(b"x-big", b"a" * 3000)] * 25)
    assert len(block) < 16_384
    return frame(HEADERS, END_HEADERS | END_STREAM, 1, block)


def _continuation_flood() -> bytes:
    block = request_block(hpack.Encoder())
    return frame(HEADERS, 0, 1, block[:3]) + b"".join(
        frame(CONTINUATION, 0, 1) for _ in range(500))


def _ping_flood() -> bytes:
    return b"".join(frame(PING, 0, 0, i.to_bytes(8, "big")) for i in range(3000))


def _settings_flood() -> bytes:
    return b"".join(frame(SETTINGS, 0, 0) for _ in range(1000))


def _rapid_reset() -> bytes:
    enc = hpack.Encoder()
    out = []
    for i in range(3000):
        sid = 2 * i + 1
        out.append(frame(HEADERS, END_HEADERS, sid, request_block(enc)))
        out.append(frame(RST_STREAM, 0, sid, (8).to_bytes(4, "big")))
    return b"".join(out)


CASES = {
    "frame_size": (lambda: frame(DATA, 0, 1, b"x" * 16_385), FRAME_SIZE_ERROR),
    "compression": (_bad_hpack, COMPRESSION_ERROR),
    "header_size": (_huge_headers, ENHANCE_YOUR_CALM),
    "continuation_flood": (_continuation_flood, ENHANCE_YOUR_CALM),
    "ping_flood": (_ping_flood, ENHANCE_YOUR_CALM),
    "settings_flood": (_settings_flood, ENHANCE_YOUR_CALM),
    "reset_flood": (_rapid_reset, ENHANCE_YOUR_CALM),
}


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_misbehaving_client_is_closed_and_counted(gmesh: Mesh[GrpcApp], kind: str) -> None:
    make, code = CASES[kind]
    tel = gmesh.proxy.telemetry
    async with channel(gmesh.inbound) as ch:
        call = method(ch, "Unary")
        assert await call(b"before", timeout=5) == b"BEFORE"
        answer = frames_of(await session(gmesh.inbound, make()))
        goaways = [f for f in answer if f[0] == GOAWAY]
        assert goaways, f"no GOAWAY in {[f[0] for f in answer]}"
        assert int.from_bytes(goaways[-1][3][4:8], "big") == code
        assert tel.http2_errors == {kind: 1}
        # The well-behaved connection, opened before, goes on.
        assert await call(b"after", timeout=5) == b"AFTER"
    assert f'meshtui_http2_errors_total{{kind="{kind}"}} 1.0' in metrics_text(tel).decode()


async def test_broken_preface_is_answered_in_http2_and_never_reaches_the_app(
        gmesh: Mesh[GrpcApp]) -> None:
    bad = b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"
    answer = frames_of(await session(gmesh.inbound, b"", preface=bad))
    assert [f[0] for f in answer] == [SETTINGS, GOAWAY]
    assert int.from_bytes(answer[1][3][4:8], "big") == PROTOCOL_ERROR
    assert gmesh.proxy.telemetry.http2_errors == {"bad_preface": 1}
    [tcp] = gmesh.proxy.telemetry.tcp_series()
    assert tcp.close_total == 1


async def test_rapid_reset_keeps_state_bounded(gmesh: Mesh[GrpcApp]) -> None:
    """Streams opened and reset are forgotten as they go: a connection's table of
    streams never holds more than the cap, however many a client opens."""
    assert gmesh.proxy.ctx is not None
    gmesh.proxy.ctx.max_streams = 50
    enc = hpack.Encoder()
    opened = b"".join(frame(HEADERS, END_HEADERS, 2 * i + 1, request_block(enc))
                      for i in range(200))  # opened, never ended
    _, w = await asyncio.open_connection(*gmesh.inbound)
    w.write(PREFACE + frame(SETTINGS, 0, 0) + opened)
    await w.drain()
    tel = gmesh.proxy.telemetry
    for _ in range(200):
        if tel.untracked_streams + sum(x.requests for x in tel.routes()) == 200:
            break
        await asyncio.sleep(0.01)
    [conn] = list(gmesh.proxy.ctx.conns)
    assert len(conn.codec.streams) == 50  # type: ignore[attr-defined]
    assert tel.untracked_streams == 150
    w.close()


@pytest.mark.parametrize(("first", "timed_out", "kind"), [
    (PREFACE, False, http1.HTTP2),
    (PREFACE + frame(SETTINGS, 0, 0), False, http1.HTTP2),
    (PREFACE[:10], False, http1.NEED_MORE),  # the rest may follow
    (PREFACE[:10], True, http1.OPAQUE),
    (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", False, http1.BAD_PREFACE),
    (b"PRI /x HTTP/1.1\r\n", False, http1.HTTP),  # a method called PRI
    (b"\x16\x03\x01\x02\x00", False, http1.OPAQUE),  # TLS stays opaque
])
def test_detection_of_the_preface(first: bytes, timed_out: bool, kind: int) -> None:
    assert http1.detect(first, timed_out=timed_out) == kind


async def test_no_route_is_refused_in_http2() -> None:
    """An inbound listener with no app to send to: the HTTP/2 client gets GOAWAY, and
    the proxy counts it."""
    proxy = ProxyServer(proxy_config(None))
    await proxy.start()
    try:
        assert proxy.inbound_address is not None
        answer = frames_of(await session(proxy.inbound_address, b""))
        assert [f[0] for f in answer] == [SETTINGS, GOAWAY]
        assert proxy.telemetry.http2_errors == {"no_route": 1}
        assert proxy.ctx is not None and proxy.ctx.failures == 1
    finally:
        await proxy.stop(grace=0.2)
