"""The proxy's limits and failure answers (DESIGN.md principle 7): each is a
proper response with the reason in ``meshtui-proxy-error``, counted as a
failure; a refused request never reaches the app; nothing else is disturbed."""

from __future__ import annotations

import asyncio
import socket

import pytest
from proxykit import Client, Response, Upstream, read_response
from proxymesh import Mesh, proxy_config

from meshtui.proxy.config import Timeouts
from meshtui.proxy.server import ProxyServer


async def exchange(addr: tuple[str, int], raw: bytes) -> tuple[Response, bytes]:
    """Sends raw bytes, reads one response, then whatever follows until the close."""
    r, w = await asyncio.open_connection(*addr)
    w.write(raw)
    await w.drain()
    resp = await asyncio.wait_for(read_response(r), 3)
    rest = await asyncio.wait_for(r.read(), 3)  # the proxy closes after a refusal
    w.close()
    return resp, rest


def refusals(mesh: Mesh) -> dict[int, int]:
    """Responses the proxy recorded with a status of its own, by status. Every
    refusal or failure the proxy answers itself counts as a failure, 4xx included."""
    out: dict[int, int] = {}
    for route in mesh.proxy.telemetry.routes():
        for (status, success), st in route.responses.items():
            if status >= 400:
                assert not success
                out[status] = out.get(status, 0) + st.count
    return out


@pytest.mark.parametrize(("raw", "status", "why"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nhost: a\r\n\r\n", 414, "request line"),
    (b"GET / HTTP/1.1\r\nhost: a\r\n" + b"".join(b"x-h%d: 1\r\n" % i for i in range(101))
     + b"\r\n", 431, "more than 100"),
    (b"GET / HTTP/1.1\r\nhost: a\r\nx-big: " + b"b" * (61 * 1024) + b"\r\n\r\n", 431, "60 KiB"),
    (b"GET / HTTP/1.1\r\nhost: a\r\nbad header line\r\n\r\n", 400, "malformed"),
    (b"GET /\x01 HTTP/1.1\r\nhost: a\r\n\r\n", 400, "malformed"),
    (b"POST /count HTTP/1.1\r\nhost: a\r\ntransfer-encoding: snappy\r\n\r\n", 501, "snappy"),
    (b"POST /count HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked"
     b"\r\n\r\n", 400, "malformed"),
], ids=["long-line", "101-headers", "big-header", "bad-header", "bad-target", "unknown-coding",
        "length-and-chunked"])
async def test_refused_requests(mesh: Mesh, raw: bytes, status: int, why: str) -> None:
    resp, _ = await exchange(mesh.inbound, raw)
    assert resp.status == status
    assert why in (resp.header("meshtui-proxy-error") or "")
    assert resp.header("connection") == "close"
    assert mesh.app.seen.requests == []  # never reached the app
    assert refusals(mesh) == {status: 1}


async def test_many_headers_within_the_limits_pass(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    headers = {f"x-h{i}": "v" * 500 for i in range(99)}  # ~50 KiB, 100 with host
    r = await c.request("GET", "/hello", headers)
    assert r.status == 200


async def test_garbage_after_a_good_request_is_400_and_counted(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"GET /hello HTTP/1.1\r\nhost: a\r\n\r\n\x00\x01garbage\r\n\r\n")
    first = await read_response(r)
    second = await read_response(r)
    assert (first.status, second.status) == (200, 400)
    assert len(mesh.app.seen.requests) == 1
    # Reported with an empty method and path, so it is counted.
    assert refusals(mesh) == {400: 1}


async def test_slow_request_head_gets_408(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"GET /hello HTTP/1.1\r\nhost: a\r\n")  # and never the blank line
    resp = await asyncio.wait_for(read_response(r), 3)
    assert resp.status == 408 and "request head" in (resp.header("meshtui-proxy-error") or "")
    assert await r.read() == b""
    assert mesh.app.seen.requests == []


async def test_unreachable_app_is_502_and_the_connection_lives_on() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # bound, never listening: connections are refused
        proxy = ProxyServer(proxy_config(dead_port))
        await proxy.start()
        try:
            c = await Client.connect(proxy.inbound_address)  # type: ignore[arg-type]
            for _ in range(2):
                r = await c.request("GET", "/hello")
                assert r.status == 502
                assert r.header("meshtui-proxy-error") == "connection refused"
            await c.close()
        finally:
            await proxy.stop(grace=0.1)


async def test_slow_app_is_504_and_others_are_untouched(mesh: Mesh) -> None:
    slow = await Client.connect(mesh.inbound)
    fast = await Client.connect(mesh.inbound)
    slow_req = asyncio.create_task(slow.request("GET", "/slow?ms=3000"))
    for _ in range(3):
        assert (await fast.request("GET", "/hello")).status == 200
    r = await asyncio.wait_for(slow_req, 3)
    assert r.status == 504 and "response timeout" in (r.header("meshtui-proxy-error") or "")
    # The same client connection carries on.
    assert (await slow.request("GET", "/hello")).status == 200
    assert refusals(mesh) == {504: 1}


async def test_overload_is_503() -> None:
    app = await Upstream().start()
    proxy = ProxyServer(proxy_config(app.port, max_in_flight=1))
    await proxy.start()
    try:
        a = await Client.connect(proxy.inbound_address)  # type: ignore[arg-type]
        b = await Client.connect(proxy.inbound_address)  # type: ignore[arg-type]
        busy = asyncio.create_task(a.request("GET", "/slow?ms=300"))
        await asyncio.sleep(0.1)
        r = await b.request("GET", "/hello")
        assert r.status == 503 and "overloaded" in (r.header("meshtui-proxy-error") or "")
        assert (await busy).status == 200
        assert (await b.request("GET", "/hello")).status == 200  # slots come back
    finally:
        await proxy.stop(grace=0.1)
        await app.close()


async def test_upstream_closing_mid_response_resets_only_that_request(mesh: Mesh) -> None:
    # A raw app that promises 100 bytes, sends 10 and hangs up.
    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(liar, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = ProxyServer(proxy_config(port))
    await proxy.start()
    try:
        r, w = await asyncio.open_connection(*proxy.inbound_address)  # type: ignore[misc]
        w.write(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 3)
        assert data.endswith(b"0123456789")  # cut short: the client sees the break
        [route] = proxy.telemetry.routes()
        assert {k: v.count for k, v in route.responses.items()} == {(200, False): 1}
    finally:
        await proxy.stop(grace=0.1)
        server.close()


async def test_timeouts_come_from_the_config() -> None:
    t = Timeouts(detect=0.2, header_read=0.3, connect=0.5, response=0.4)
    cfg = proxy_config(1, timeouts=t)
    assert cfg.timeouts.response == 0.4


async def test_junk_on_many_connections_disturbs_no_one(mesh: Mesh, caplog) -> None:  # type: ignore[no-untyped-def]
    import random

    rng = random.Random(7)
    good = await Client.connect(mesh.inbound)

    async def junk(i: int) -> None:
        r, w = await asyncio.open_connection(*mesh.inbound)
        prefix = rng.choice([b"", b"GET ", b"GET / HTTP/1.1\r\n", b"POST /echo HTTP/1.1\r\n"
                             b"transfer-encoding: chunked\r\n\r\n"])
        w.write(prefix + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
        if i % 2:
            w.write_eof()
        try:
            await asyncio.wait_for(r.read(), 0.4)
        except (TimeoutError, ConnectionError):
            pass
        w.close()

    for _ in range(3):
        await asyncio.gather(*(junk(i) for i in range(30)))
        assert (await good.request("GET", "/hello")).body == b"hello"
    assert mesh.proxy.ctx is not None and mesh.proxy.ctx.in_flight == 0
    # No callback of the proxy raised (asyncio would have logged it).
    assert [r for r in caplog.records if r.name == "asyncio" and r.levelname == "ERROR"] == []
