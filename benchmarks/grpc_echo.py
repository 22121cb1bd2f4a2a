"""A gRPC server for the proxy benchmark: ``/bench.Echo/Unary`` answers each request
with its own bytes (no protobuf: the proxy sees gRPC's framing, not payloads).

Run: ``.venv/bin/python benchmarks/grpc_echo.py PORT`` (serves until killed).
"""

from __future__ import annotations

import asyncio
import sys

import grpc

METHOD = "/bench.Echo/Unary"


async def _echo(req: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
    return req


async def serve(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "bench.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(_echo)})])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
