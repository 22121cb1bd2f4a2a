"""One connection to the controller, with deadlines and clear failures.

grpc.aio objects belong to the event loop that made them: build a
:class:`ControllerClient` inside the loop that uses it (the CLI's
``asyncio.run``, or the Textual app's own loop).

Two failures are told apart, since they call for different remedies: nothing
listens at the address ("cannot reach": start a controller, or fix --server),
and something listens but does not answer ("not answering": a hung or
stopped controller). A long stream would otherwise never notice the second:
the kernel of a stopped process still accepts and acknowledges, so the
channel sends HTTP/2 pings (keepalive) and gives the connection up when they
go unanswered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from meshtui.errors import RuntimeFailure, UsageError
from meshtui.v1 import common_pb2, controller_pb2, controller_pb2_grpc

DEFAULT_DEADLINE_S = 5.0
#: Seconds a connection may take to answer before the controller is "not answering"
#: (a live one answers in milliseconds, a loaded one in well under a second).
CONNECT_S = 5.0
#: A ping after this long without a frame, and this long for its answer: a frozen
#: stream is noticed within their sum (and a probe of at most PROBE_S) — under 10 s.
KEEPALIVE_S = 3.0
PROBE_S = 1.0
T = TypeVar("T")


def _hint(server: str) -> str:
    return (f"cannot reach the controller at {server}; start the demo mesh with "
            f"`meshtui demo --headless`, or point --server / MESHTUI_SERVER at a controller")


def _not_answering(server: str) -> str:
    return (f"the controller at {server} is not answering: something accepts connections "
            f"there but gives no answer (a hung or stopped controller?)")


async def _listening(server: str) -> bool:
    """Whether something accepts a TCP connection at ``server`` (HOST:PORT)."""
    from meshtui.model.inventory import InventoryError, parse_address

    try:
        addr = parse_address(server)
    except InventoryError:
        return False
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addr.host, addr.port),
                                           PROBE_S)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def translate(err: grpc.aio.AioRpcError | grpc.RpcError, server: str) -> Exception:
    """A gRPC failure as the exception the CLI turns into an exit code."""
    code = err.code() if hasattr(err, "code") else None
    detail = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.INVALID_ARGUMENT or code == grpc.StatusCode.NOT_FOUND:
        return UsageError(detail or "the controller rejected the request")
    if code == grpc.StatusCode.UNAVAILABLE:
        return RuntimeFailure(_hint(server))
    if code == grpc.StatusCode.UNAUTHENTICATED:
        from meshtui.identity.credential import path_for

        return RuntimeFailure(f"the controller at {server} needs its credential, expected "
                              f"in {path_for(server)} (written by `meshtui controller`)")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return RuntimeFailure(f"the controller at {server} did not answer in time")
    return RuntimeFailure(f"controller at {server}: {code.name if code else 'error'}: {detail}")


class _Bearer:
    """Sends the controller's credential with every call."""

    def __init__(self, token: str) -> None:
        from meshtui.identity.credential import METADATA_KEY, bearer

        self._md = (METADATA_KEY, bearer(token))

    def _details(self, d: Any) -> Any:
        return grpc.aio.ClientCallDetails(d.method, d.timeout, [*(d.metadata or ()), self._md],
                                          d.credentials, d.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any
                                    ) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any
                                     ) -> Any:
        return await continuation(self._details(details), request)


# A channel files each interceptor under the first kind it is an instance of: one apiece.
class _BearerUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    pass


class _BearerStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    pass


def _credential(server: str) -> list[Any]:
    from meshtui.identity.credential import read

    token = read(server)
    return [_BearerUnary(token), _BearerStream(token)] if token else []


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
                     ("grpc.max_reconnect_backoff_ms", 2000),
                     # Pings while a call is open, however long it has been quiet (a
                     # tap of an idle resource sends nothing); the controller allows
                     # them (meshtui.controller.server). The ping timeout too: this
                     # grpc gives an unanswered keepalive that long (a minute unset).
                     ("grpc.keepalive_time_ms", int(KEEPALIVE_S * 1000)),
                     ("grpc.keepalive_timeout_ms", int(KEEPALIVE_S * 1000)),
                     ("grpc.http2.ping_timeout_ms", int(KEEPALIVE_S * 1000)),
                     ("grpc.http2.max_pings_without_data", 0)],
            interceptors=_credential(server),
        )
        self.mesh = controller_pb2_grpc.MeshStub(self.channel)
        self.stats = controller_pb2_grpc.StatsStub(self.channel)
        self.tap_stub = controller_pb2_grpc.ResourceTapStub(self.channel)

    async def identity_status(self) -> Any:
        """The controller's identity (an ``IdentityStatus``); None if identity is off."""
        from meshtui.v1 import identity_pb2, identity_pb2_grpc

        try:
            return await identity_pb2_grpc.IdentityStub(self.channel).Status(
                identity_pb2.IdentityStatusRequest(), timeout=self.deadline_s)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise translate(e, self.server) from None

    async def __aenter__(self) -> ControllerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close(grace=None)

    async def wait_ready(self, timeout: float = CONNECT_S) -> None:
        """Waits for the channel to connect: RuntimeFailure at once when nothing
        listens ("cannot reach", with a hint), after ``timeout`` when something
        listens but does not answer ("not answering")."""
        channel = self.channel
        state = channel.get_state(try_to_connect=True)
        deadline = asyncio.get_running_loop().time() + timeout
        while state != grpc.ChannelConnectivity.READY:
            if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                raise RuntimeFailure(_hint(self.server))
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(channel.wait_for_state_change(state), max(left, 0))
            except TimeoutError:
                raise await self._silent() from None
            state = channel.get_state(try_to_connect=True)

    async def _silent(self) -> RuntimeFailure:
        """The failure of a controller that gave no answer: not answering, if
        something still accepts connections there; else cannot reach."""
        if await _listening(self.server):
            return RuntimeFailure(_not_answering(self.server))
        return RuntimeFailure(_hint(self.server))

    async def _failure(self, err: grpc.aio.AioRpcError) -> Exception:
        code = err.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            # A broken connection (a keepalive unanswered) or no answer in time.
            return await self._silent()
        return translate(err, self.server)

    async def _unary(self, method: Callable[..., Awaitable[T]], req: object) -> T:
        """One call with the deadline; gRPC failures become the CLI's exceptions."""
        await self.wait_ready()
        try:
            return await method(req, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as e:
            raise await self._failure(e) from None

    async def _stream(self, start: Callable[[], Any]) -> AsyncIterator[Any]:
        """Messages of the server stream ``start()`` opens, once the channel is up;
        cancelled when the caller stops iterating."""
        await self.wait_ready()
        call = start()
        try:
            async for msg in call:
                yield msg
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                return
            raise await self._failure(e) from None
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

    async def edges(self, req: controller_pb2.EdgesRequest) -> controller_pb2.EdgesResponse:
        return await self._unary(self.stats.Edges, req)

    def watch(self, req: controller_pb2.WatchStatRequest
              ) -> AsyncIterator[controller_pb2.StatResponse]:
        return self._stream(lambda: self.stats.Watch(req))

    def tap(self, req: controller_pb2.TapByResourceRequest
            ) -> AsyncIterator[controller_pb2.TapByResourceBatch]:
        """Tap batches until the caller stops iterating (which cancels the stream)."""
        return self._stream(lambda: self.tap_stub.Tap(req))
