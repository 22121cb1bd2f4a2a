"""Bytes the proxy passes without parsing: upgrades, CONNECT, and connections
that do not speak HTTP/1 at all (protocol detection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from proxykit import read_response
from proxymesh import Mesh, proxy_config

from meshtui.proxy.server import ProxyServer


async def wait_until(cond, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_websocket_upgrade_passes_bytes_both_ways(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    head = b"GET /ws HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n"
    w.write(head)
    resp = await asyncio.wait_for(read_response(r), 2)
    sent = len(head)
    received = 0
    assert resp.status == 101 and (resp.header("upgrade") or "").lower() == "websocket"
    for msg in (b"hello", b"\x00\x81binary\xff" * 1000):
        w.write(msg)
        got = await asyncio.wait_for(r.readexactly(len(msg)), 2)
        assert got == msg.upper()
        sent += len(msg)
        received += len(got)
    # The app saw the upgrade request with its Upgrade/Connection fields kept.
    _, _, headers = mesh.app.seen.requests[0]
    assert headers["upgrade"] == "websocket" and headers["connection"].lower() == "upgrade"
    w.close()
    [route] = mesh.proxy.telemetry.routes()
    await wait_until(lambda: (101, True) in route.responses)
    [tcp] = mesh.proxy.telemetry.tcp_series()
    await wait_until(lambda: tcp.close_total == 1)
    assert tcp.read_bytes == sent
    assert tcp.write_bytes == received + len(b"HTTP/1.1 101 Switching Protocols\r\n"
                                             b"upgrade: websocket\r\nconnection: upgrade\r\n\r\n")


async def test_connect_through_the_outbound_listener(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.outbound)
    target = f"127.0.0.1:{mesh.app.port}"
    w.write(f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n".encode())
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
    assert head.startswith(b"HTTP/1.1 200")
    # Inside the tunnel the client speaks to the app itself.
    w.write(b"GET /hello HTTP/1.1\r\nhost: inner\r\n\r\n")
    resp = await asyncio.wait_for(read_response(r), 2)
    assert resp.body == b"hello"
    w.close()
    [route] = mesh.proxy.telemetry.routes()
    assert route.authority == target
    await wait_until(lambda: (200, True) in route.responses)


@pytest.fixture
async def echo_mesh() -> AsyncIterator[tuple[ProxyServer, list[bytes]]]:
    """A proxy in front of a non-HTTP app that greets first and echoes upper-cased."""
    got: list[bytes] = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 ready\r\n")
        while data := await reader.read(65536):
            got.append(data)
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(app, "127.0.0.1", 0)
    proxy = ProxyServer(proxy_config(server.sockets[0].getsockname()[1]))
    await proxy.start()
    try:
        yield proxy, got
    finally:
        await proxy.stop(grace=0.1)
        server.close()


async def test_non_http_client_is_relayed_opaquely(echo_mesh) -> None:  # type: ignore[no-untyped-def]
    proxy, _got = echo_mesh
    r, w = await asyncio.open_connection(*proxy.inbound_address)
    payload = b"\x16\x03\x01\x02\x00binary-hello"  # starts like a TLS record
    w.write(payload)
    data = b""
    while len(data) < len(b"220 ready\r\n") + len(payload):
        data += await asyncio.wait_for(r.read(65536), 2)
    assert data == b"220 ready\r\n" + payload.upper()
    w.write_eof()  # half-close: the app sees the end, answers nothing more, closes
    assert await asyncio.wait_for(r.read(), 2) == b""
    [tcp] = proxy.telemetry.tcp_series()
    await wait_until(lambda: tcp.close_total == 1)
    assert (tcp.read_bytes, tcp.write_bytes) == (len(payload), len(data))
    assert proxy.telemetry.routes() == []  # no HTTP request was counted


async def test_server_speaks_first_after_the_detect_timeout(echo_mesh) -> None:  # type: ignore[no-untyped-def]
    proxy, _ = echo_mesh
    t0 = time.monotonic()
    r, w = await asyncio.open_connection(*proxy.inbound_address)
    greeting = await asyncio.wait_for(r.readexactly(11), 3)
    waited = time.monotonic() - t0
    assert greeting == b"220 ready\r\n"
    assert 0.25 <= waited < 2.0  # the detect timeout (0.3 s in these tests), not longer
    w.write(b"quit\r\n")
    assert await asyncio.wait_for(r.readexactly(6), 2) == b"QUIT\r\n"
    w.close()


async def test_http2_preface_to_a_server_that_does_not_speak_http2(echo_mesh) -> None:  # type: ignore[no-untyped-def]
    """The preface makes the connection HTTP/2: a server answering something else is
    a protocol error, told to the client in HTTP/2 (SETTINGS, then GOAWAY) and counted."""
    proxy, _got = echo_mesh
    r, w = await asyncio.open_connection(*proxy.inbound_address)
    w.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    data = await asyncio.wait_for(r.read(), 2)  # up to the close
    assert data[3] == 0x4 and data[9 + 3] == 0x7  # SETTINGS, then GOAWAY
    assert int.from_bytes(data[9 + 9 + 4:9 + 9 + 8], "big") == 0x6  # FRAME_SIZE_ERROR
    assert proxy.telemetry.http2_errors == {"frame_size": 1}
    w.close()
