"""HTTP/1.1 through a real proxy on loopback: what the client sent and got back,
what the app saw, and what the telemetry recorded all agree."""

from __future__ import annotations

import asyncio
import json

from proxykit import Client, read_response
from proxymesh import Mesh

from meshtui.proxy.tap_hub import REQUEST_INIT, RESPONSE_END, RESPONSE_INIT
from meshtui.proxy.telemetry import Direction


def responses(mesh: Mesh) -> dict[tuple[int, bool], int]:
    out: dict[tuple[int, bool], int] = {}
    for route in mesh.proxy.telemetry.routes():
        for key, st in route.responses.items():
            out[key] = out.get(key, 0) + st.count
    return out


async def wait_for(cond, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_keep_alive_requests_share_one_connection_each_side(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    for _ in range(5):
        r = await c.request("GET", "/hello")
        assert (r.status, r.body) == (200, b"hello")
    await c.close()
    assert mesh.app.seen.connections == 1  # the pooled upstream connection was reused
    [route] = mesh.proxy.telemetry.routes()
    assert (route.direction, route.authority, route.requests) == (Direction.INBOUND, "app.test", 5)
    [tcp] = mesh.proxy.telemetry.tcp_series()
    assert tcp.open_total == 1


async def test_status_classes_and_latency_histograms(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    for status in (200, 200, 404, 500, 503):
        assert (await c.request("GET", f"/status/{status}")).status == status
    r = await c.request("GET", "/slow?ms=60")
    assert r.status == 200
    got = responses(mesh)
    assert got == {(200, True): 3, (404, True): 1, (500, False): 1, (503, False): 1}
    [route] = mesh.proxy.telemetry.routes()
    ok = route.responses[(200, True)].latency
    assert ok.count == 3
    # The slow one took 60 ms at the app; the histogram's top reflects it.
    assert ok.quantile(1.0) >= 55_000
    assert route.responses[(404, True)].latency.quantile(0.5) < 55_000


async def test_tcp_bytes_match_what_the_client_sent_and_got(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    sent = b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 11\r\n\r\nhello world"
    w.write(sent)
    await w.drain()
    resp = await read_response(r)
    assert resp.body == b"hello world"
    w.write(b"GET /hello HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
    await w.drain()
    rest = await r.read()  # to the close
    w.close()
    [tcp] = mesh.proxy.telemetry.tcp_series()
    await wait_for(lambda: tcp.close_total == 1)
    assert tcp.read_bytes == len(sent) + len(b"GET /hello HTTP/1.1\r\nhost: a\r\nconnection: close"
                                             b"\r\n\r\n")
    first = (b"HTTP/1.1 200 X\r\ncontent-length: 11\r\n\r\nhello world")
    assert tcp.write_bytes == len(first) + len(rest)
    assert rest.endswith(b"hello") and b"connection: close" in rest


async def test_chunked_both_ways(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in (b"a" * 1000, b"b" * 70000, b"c"))
    r = await c.request("POST", "/count", {"transfer-encoding": "chunked"}, body + b"0\r\n\r\n")
    assert (r.status, r.body) == (200, b"71001")
    r = await c.request("GET", "/stream?n=300000")
    assert r.header("transfer-encoding") == "chunked" and len(r.body) == 300000
    r = await c.request("GET", "/trailers")
    assert r.body == b"hello" and r.trailers == [("grpc-status", "2")]
    # grpc-status 2 in the trailers makes that 200 a failure.
    assert responses(mesh)[(200, False)] == 1


async def test_http10_client(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"GET /hello HTTP/1.0\r\n\r\n")
    data = await r.read()  # 1.0 without keep-alive: the proxy closes after the response
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello")
    # A chunked upstream body reaches an HTTP/1.0 client unchunked, ended by the close.
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"GET /stream?n=1000 HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
    data = await r.read()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == b"x" * 1000
    # 1.0 keep-alive with a length-framed body stays open.
    r, w = await asyncio.open_connection(*mesh.inbound)
    for _ in range(2):
        w.write(b"GET /hello HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
        resp = await read_response(r)
        assert resp.body == b"hello" and resp.header("connection") == "keep-alive"
    w.close()
    # The app got a Host header although the client sent none.
    assert mesh.app.seen.requests[0][2]["host"] == f"127.0.0.1:{mesh.app.port}"


async def test_expect_100_continue(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"POST /count HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
    await w.drain()
    interim = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    w.write(b"12345")
    resp = await read_response(r)
    assert (resp.status, resp.body) == (200, b"5")
    w.close()


async def test_pipelined_requests_answered_in_order(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"GET /slow?ms=50 HTTP/1.1\r\nhost: a\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc"
            b"GET /hello HTTP/1.1\r\nhost: a\r\n\r\n")
    bodies = [(await read_response(r)).body for _ in range(3)]
    assert bodies == [b"slow", b"abc", b"hello"]
    w.close()


async def test_hop_by_hop_headers_stay_on_their_hop(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    r = await c.request("GET", "/headers", {
        "connection": "keep-alive, x-private", "x-private": "1", "keep-alive": "timeout=5",
        "proxy-connection": "keep-alive", "te": "trailers", "x-end-to-end": "yes"})
    seen = {k.lower() for k, _ in json.loads(r.body)}
    assert "x-end-to-end" in seen
    assert not seen & {"x-private", "keep-alive", "proxy-connection", "te"}
    assert "connection" not in seen


async def test_head_response_has_no_body_and_keeps_the_connection(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    r = await c.request("HEAD", "/hello")
    assert r.status == 200 and r.header("content-length") == "5"
    r = await c.request("GET", "/hello")  # the next response is not eaten as HEAD's body
    assert r.body == b"hello"
    assert mesh.app.seen.connections == 1


async def test_close_delimited_upstream_body(mesh: Mesh) -> None:
    r, w = await asyncio.open_connection(*mesh.inbound)
    w.write(b"GET /close HTTP/1.1\r\nhost: a\r\n\r\n")
    data = await asyncio.wait_for(r.read(), 2)
    assert data.endswith(b"\r\n\r\nuntil-close body")
    assert responses(mesh) == {(200, True): 1}


async def test_tap_sees_every_request_with_its_three_events(mesh: Mesh) -> None:
    hub = mesh.proxy.telemetry.hub
    sub = hub.subscribe()
    c = await Client.connect(mesh.inbound)
    await c.request("GET", "/hello", {"authorization": "Bearer s3cret"})
    await c.request("POST", "/echo", body=b"12345678")
    kinds = [ev[0] for ev in sub.queue]
    assert kinds == [REQUEST_INIT, RESPONSE_INIT, RESPONSE_END] * 2
    batch = hub.take_batch(sub)
    assert len(batch.events) == 6 and batch.dropped == 0
    start, _, end = batch.events[3:6]
    assert start.request_init.method == "POST" and start.request_init.path == "/echo"
    assert end.response_end.response_bytes == 8
    first = batch.events[0].request_init
    auth = [h.value for h in first.headers if h.name.lower() == "authorization"]
    assert auth == [b"<redacted>"] or auth == ["<redacted>"]


async def test_a_reused_upstream_closed_under_a_request_is_retried_once() -> None:
    # An app that answers the first request of each connection and hangs up on the
    # second, as a keep-alive timeout racing a new request looks to the proxy.
    seen = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append((n, head.split(b" ")[1]))
            if n == 1:
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    from proxymesh import proxy_config

    from meshtui.proxy.server import ProxyServer

    server = await asyncio.start_server(app, "127.0.0.1", 0)
    proxy = ProxyServer(proxy_config(server.sockets[0].getsockname()[1]))
    await proxy.start()
    try:
        c = await Client.connect(proxy.inbound_address)  # type: ignore[arg-type]
        assert (await c.request("GET", "/one")).body == b"ok"
        assert (await c.request("GET", "/two")).body == b"ok"  # retried on a new connection
        assert seen == [(0, b"/one"), (1, b"/two"), (0, b"/two")]
        # A request with a body is not retried: it may have been acted on.
        r = await c.request("POST", "/three", body=b"data")
        assert r.status == 502
    finally:
        await proxy.stop(grace=0.1)
        server.close()


async def test_grpc_status_in_the_response_head_classifies_the_response(mesh: Mesh) -> None:
    c = await Client.connect(mesh.inbound)
    for code in ("0", "14", "not-a-number", "0"):
        r = await c.request("GET", f"/grpc-status/{code}")
        assert r.status == 200 and r.header("grpc-status") == code
    await c.close()
    # 0 is a success; 14 (UNAVAILABLE) and an unreadable code (UNKNOWN) are failures.
    assert responses(mesh) == {(200, True): 2, (200, False): 2}


async def test_closed_connections_are_freed_at_once_not_left_to_the_collector(
        mesh: Mesh) -> None:
    """A closed connection's objects go as soon as it closes. Left in reference
    cycles, a connection that lived long enough to reach the collector's oldest
    generation would stay in memory for good (the proxy collects that one rarely)."""
    import gc

    from meshtui.proxy.downstream import Downstream
    from meshtui.proxy.exchange import Exchange

    def alive(kind: type) -> int:
        return sum(1 for o in gc.get_objects() if type(o) is kind)

    gc.collect()
    gc.disable()
    try:
        clients = [await Client.connect(mesh.inbound) for _ in range(20)]
        for c in clients:
            for _ in range(3):
                assert (await c.request("GET", "/hello")).status == 200
        assert alive(Downstream) == 20
        for c in clients:
            await c.close()
        await wait_for(lambda: not mesh.proxy.ctx.conns)
        assert alive(Downstream) == 0
        assert alive(Exchange) == 0
    finally:
        gc.enable()
