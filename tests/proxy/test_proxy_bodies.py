"""Tap's bodies (``capture_body``) through a real proxy: http.client and grpcio as
clients, the first N bytes of each body copied as they pass, never more held."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import struct
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpckit import SERVICE, GrpcApp, channel, method
from proxykit import Upstream
from proxymesh import Mesh, meshed, proxy_config

from meshtui.errors import UsageError
from meshtui.model.inventory import Address
from meshtui.proxy.config import add_arguments, from_args
from meshtui.proxy.grpc_service import bound_port
from meshtui.proxy.server import ProxyServer
from meshtui.proxy.tap_hub import RESPONSE_END, Subscriber
from meshtui.v1 import common_pb2, proxy_pb2, proxy_pb2_grpc


async def wait_for(cond: Callable[[], Any], timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def post(addr: tuple[str, int], path: str, body: bytes) -> bytes:
    """One request with Python's own HTTP client (in a thread: the proxy shares the loop)."""
    conn = http.client.HTTPConnection(*addr, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/octet-stream"})
        return conn.getresponse().read()
    finally:
        conn.close()


def ends(m: Mesh[Any], sub: Subscriber) -> list[common_pb2.ResponseEnd]:
    batch = m.proxy.telemetry.hub.take_batch(sub)
    return [e.response_end for e in batch.events if e.HasField("response_end")]


def held(sub: Subscriber) -> list[tuple[int, int, int] | None]:
    """Bytes the queued response-end events hold of each body (before any batch):
    (request body's held, its total, response body's held)."""
    return [None if ev[-1] is None else
            (sum(map(len, ev[-1][0])), ev[-1][1], sum(map(len, ev[-1][2])))
            for ev in sub.queue if ev[0] == RESPONSE_END]


async def test_http1_bodies_are_captured_up_to_n_and_no_more_held() -> None:
    async with meshed(await Upstream().start()) as m:
        hub = m.proxy.telemetry.hub
        sub = hub.subscribe(capture_body=16)
        body = b"hello\x00world\x1b[31m" + bytes(range(256)) * 4096  # 1 MiB + 16
        echoed = await asyncio.to_thread(post, m.inbound, "/echo", body)
        assert echoed == body  # the traffic itself went through whole
        await wait_for(lambda: held(sub))
        # The per-stream bound: 16 bytes held of each body, of 1 MiB through.
        assert held(sub) == [(16, len(body), 16)]
        [end] = ends(m, sub)
        assert end.request_body.data == body[:16] and end.request_body.truncated
        assert end.response_body.data == body[:16] and end.response_body.truncated
        assert end.request_body.limit == 16
        # A body shorter than N comes whole, not truncated.
        assert await asyncio.to_thread(post, m.inbound, "/echo", b"tiny") == b"tiny"
        await wait_for(lambda: held(sub))
        [end] = ends(m, sub)
        assert (end.request_body.data, end.request_body.truncated) == (b"tiny", False)
        assert (end.response_body.data, end.response_body.truncated) == (b"tiny", False)


async def test_no_body_is_copied_unless_asked_and_each_subscriber_gets_its_own_n() -> None:
    async with meshed(await Upstream().start()) as m:
        hub = m.proxy.telemetry.hub
        plain = hub.subscribe()
        await asyncio.to_thread(post, m.inbound, "/echo", b"x" * 100)
        await wait_for(lambda: held(plain))
        assert held(plain) == [None]  # nothing copied at all
        [end] = ends(m, plain)
        assert not end.HasField("request_body") and not end.HasField("response_body")

        small = hub.subscribe(capture_body=3)
        big = hub.subscribe(capture_body=50)
        await asyncio.to_thread(post, m.inbound, "/echo", b"0123456789" * 10)
        await wait_for(lambda: held(big))
        [end] = ends(m, plain)
        assert not end.HasField("request_body")
        [end] = ends(m, small)
        assert end.request_body.data == b"012" and end.response_body.data == b"012"
        [end] = ends(m, big)
        assert end.request_body.data == (b"0123456789" * 5)
        assert end.request_body.truncated and end.request_body.limit == 50


def grpc_message(payload: bytes, compressed: int = 0) -> bytes:
    return struct.pack(">BI", compressed, len(payload)) + payload


async def test_grpc_messages_are_captured_with_their_length_prefixes() -> None:
    async with meshed(await GrpcApp().start()) as m:
        hub = m.proxy.telemetry.hub
        sub = hub.subscribe(capture_body=150)
        async with channel(m.inbound) as ch:
            assert await method(ch, "Unary")(b"hello", timeout=5) == b"HELLO"
            stream = ch.unary_stream(f"/{SERVICE}/ServerStream")
            got = [msg async for msg in stream(b"3,100", timeout=5)]
        assert len(got) == 3
        await wait_for(lambda: len(held(sub)) == 2)
        unary, streamed = ends(m, sub)
        assert unary.request_body.data == grpc_message(b"hello")
        assert unary.response_body.data == grpc_message(b"HELLO")
        assert not unary.response_body.truncated
        assert streamed.request_body.data == grpc_message(b"3,100")
        assert streamed.response_body.data == (grpc_message(b"A" * 100)
                                               + grpc_message(b"B" * 100))[:150]
        assert streamed.response_body.truncated


async def test_grpc_data_frames_split_across_reads_are_copied_in_order() -> None:
    big = bytes(range(256)) * 800  # 200 KiB: many DATA frames, each read in pieces
    async with meshed(await GrpcApp().start()) as m:
        sub = m.proxy.telemetry.hub.subscribe(capture_body=65536)
        async with channel(m.inbound) as ch:
            assert await method(ch, "Unary")(big, timeout=5) == big.upper()
        await wait_for(lambda: held(sub))
        assert held(sub) == [(65536, 5 + len(big), 65536)]
        [end] = ends(m, sub)
        assert end.request_body.data == grpc_message(big)[:65536]
        assert end.response_body.data == grpc_message(big.upper())[:65536]


async def test_the_proxy_ceiling_clamps_what_a_tap_stream_asks() -> None:
    app = await Upstream().start()
    proxy = ProxyServer(proxy_config(app.port, tap=Address("127.0.0.1", 0), max_capture_body=8))
    await proxy.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{bound_port(proxy.grpc)}") as ch:
            call = proxy_pb2_grpc.TapStub(ch).Observe(
                proxy_pb2.ObserveRequest(capture_body=65536))
            await asyncio.wait_for(call.initial_metadata(), 3)
            assert proxy.inbound_address is not None
            await asyncio.to_thread(post, proxy.inbound_address, "/echo", b"abcdefghijkl")
            found: list[common_pb2.ResponseEnd] = []
            while not found:
                batch = await asyncio.wait_for(call.read(), 3)
                found = [e.response_end for e in batch.events if e.HasField("response_end")]
            call.cancel()
        body = found[0].request_body
        assert (body.data, body.truncated, body.limit) == (b"abcdefgh", True, 8)
    finally:
        await proxy.stop(grace=0.2)
        await app.close()


def test_max_capture_body_flag_and_env() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert from_args(p.parse_args([]), {}).max_capture_body == 65536
    assert from_args(p.parse_args(["--max-capture-body", "0"]), {}).max_capture_body == 0
    assert from_args(p.parse_args([]), {"MESHTUI_MAX_CAPTURE_BODY": "512"}
                     ).max_capture_body == 512
    for bad in ("65537", "-1", "1k"):
        with pytest.raises(UsageError, match="--max-capture-body"):
            from_args(p.parse_args([f"--max-capture-body={bad}"]), {})
