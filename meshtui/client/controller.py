"""One connection to the controller, with deadlines and clear failures.

grpc.aio objects belong to the event loop that made them: build a
:class:`ControllerClient` inside the loop that uses it (the CLI's
``asyncio.run``, or the Textual app's own loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from meshtui.errors import RuntimeFailure, UsageError
from meshtui.v1 import common_pb2, controller_pb2, controller_pb2_grpc

DEFAULT_DEADLINE_S = 5.0
T = TypeVar("T")


def _hint(server: str) -> str:
    return (f"cannot reach the controller at {server}; start the demo mesh with "
            f"`meshtui demo --headless`, or point --server / MESHTUI_SERVER at a controller")


def translate(err: grpc.aio.AioRpcError | grpc.RpcError, server: str) -> Exception:
    """A gRPC failure as the exception the CLI turns into an exit code."""
    code = err.code() if hasattr(err, "code") else None
    detail = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.INVALID_ARGUMENT or code == grpc.StatusCode.NOT_FOUND:
        return UsageError(detail or "the controller rejected the request")
    if code == grpc.StatusCode.UNAVAILABLE:
        return RuntimeFailure(_hint(server))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return RuntimeFailure(f"the controller at {server} did not answer in time")
    return RuntimeFailure(f"controller at {server}: {code.name if code else 'error'}: {detail}")


class ControllerClient:
    def __init__(self, server: str, deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        self.server = server
        self.deadline_s = deadline_s
        # Messages carry up to thousands of tap events; allow large ones.
        self.channel = grpc.aio.insecure_channel(
            server,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                     ("grpc.enable_retries", 1),
                     ("grpc.initial_reconnect_backoff_ms", 200),
                     ("grpc.max_reconnect_backoff_ms", 2000)],
        )
        self.mesh = controller_pb2_grpc.MeshStub(self.channel)
        self.stats = controller_pb2_grpc.StatsStub(self.channel)
        self.tap_stub = controller_pb2_grpc.ResourceTapStub(self.channel)

    async def __aenter__(self) -> ControllerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close(grace=None)

    async def wait_ready(self, timeout: float) -> None:
        """Waits for the channel to connect; RuntimeFailure with a hint if it does not."""
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        except TimeoutError:
            raise RuntimeFailure(_hint(self.server)) from None

    async def _unary(self, method: Callable[..., Awaitable[T]], req: object) -> T:
        """One call with the deadline; gRPC failures become the CLI's exceptions."""
        try:
            return await method(req, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as e:
            raise translate(e, self.server) from None

    async def _stream(self, call: Any) -> AsyncIterator[Any]:
        """Messages of a server stream; cancelled when the caller stops iterating."""
        try:
            async for msg in call:
                yield msg
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                return
            raise translate(e, self.server) from None
        finally:
            call.cancel()

    async def list_resources(self, sel: common_pb2.ResourceSelector
                             ) -> controller_pb2.ListResourcesResponse:
        return await self._unary(self.mesh.ListResources,
                                 controller_pb2.ListResourcesRequest(selector=sel))

    async def summary(self, req: controller_pb2.StatRequest) -> controller_pb2.StatResponse:
        return await self._unary(self.stats.Summary, req)

    async def history(self, req: controller_pb2.HistoryRequest) -> controller_pb2.HistoryResponse:
        return await self._unary(self.stats.History, req)

    def watch(self, req: controller_pb2.WatchStatRequest
              ) -> AsyncIterator[controller_pb2.StatResponse]:
        return self._stream(self.stats.Watch(req))

    def tap(self, req: controller_pb2.TapByResourceRequest
            ) -> AsyncIterator[controller_pb2.TapByResourceBatch]:
        """Tap batches until the caller stops iterating (which cancels the stream)."""
        return self._stream(self.tap_stub.Tap(req))
