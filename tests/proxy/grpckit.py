"""A real gRPC server and client (grpcio's asyncio API) for the proxy's HTTP/2 tests.

Messages are raw bytes (no protobuf: the proxy sees gRPC's framing, not its
payloads). Methods of ``/t.Svc/``:

``Unary`` the request upper-cased; ``Status`` ends with the status code the
request names (``b"14"``) and a message; ``Slow`` sleeps the seconds the
request names; ``ServerStream`` ``b"n,size"`` messages of ``size`` bytes;
``ClientStream`` the byte count of what it read; ``Bidi`` echoes each message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

SERVICE = "t.Svc"
# No proxy from the environment: the tests name the proxy themselves.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]


async def _unary(req: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    return req.upper()


async def _status(req: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    code = int(req)
    if code:
        await ctx.abort(_CODES[code], f"status {code} as asked")
    return b"ok"


async def _slow(req: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(float(req))
    return b"slept"


async def _server_stream(req: bytes, ctx: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    n, size = (int(x) for x in req.split(b","))
    for i in range(n):
        yield bytes([65 + i % 26]) * size


async def _client_stream(reqs: AsyncIterator[bytes], ctx: grpc.aio.ServicerContext) -> bytes:
    total = 0
    async for m in reqs:
        total += len(m)
    return str(total).encode()


async def _bidi(reqs: AsyncIterator[bytes], ctx: grpc.aio.ServicerContext
                ) -> AsyncIterator[bytes]:
    async for m in reqs:
        yield m


_CODES = {c.value[0]: c for c in grpc.StatusCode}


class GrpcApp:
    """A grpc.aio server on loopback."""

    def __init__(self) -> None:
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> GrpcApp:
        limits = [("grpc.max_receive_message_length", 8 << 20),
                  ("grpc.max_send_message_length", 8 << 20)]
        self.server = grpc.aio.server(options=limits)
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Status": grpc.unary_unary_rpc_method_handler(_status),
            "Slow": grpc.unary_unary_rpc_method_handler(_slow),
            "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
        })])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.stop(0)


def channel(addr: tuple[str, int], authority: str | None = None) -> grpc.aio.Channel:
    """A channel to ``addr``; ``authority``: the :authority its calls carry."""
    opts = [*CHANNEL_OPTIONS, ("grpc.max_receive_message_length", 8 << 20)]
    if authority is not None:
        opts.append(("grpc.default_authority", authority))
    return grpc.aio.insecure_channel(f"{addr[0]}:{addr[1]}", options=opts)


def method(ch: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return ch.unary_unary(f"/{SERVICE}/{name}")
