"""The proxy's gRPC endpoint: Tap.Observe, Metrics.Scrape, health and reflection.

One ``grpc.aio`` server on the tap port, on the proxy's own loop. A tap stream is
a subscriber of the telemetry's :class:`~meshtui.proxy.tap_hub.TapHub`; when the
caller cancels (or goes away) the handler is cancelled and the subscriber closed.
"""

from __future__ import annotations

import weakref

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from meshtui.errors import RuntimeFailure
from meshtui.proxy.tap_hub import TapLimitError
from meshtui.proxy.telemetry import Telemetry
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc

#: Full names of the services served here.
SERVICES = (
    proxy_pb2.DESCRIPTOR.services_by_name["Tap"].full_name,
    proxy_pb2.DESCRIPTOR.services_by_name["Metrics"].full_name,
)

_PORTS: weakref.WeakKeyDictionary[grpc.aio.Server, int] = weakref.WeakKeyDictionary()


class TapService(proxy_pb2_grpc.TapServicer):
    """Streams batches of tap events to each caller."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._hub = telemetry.hub

    # Writes with context.write rather than yielding: the stub types a generator,
    # grpc.aio takes either.
    async def Observe(  # type: ignore[override]
        self, request: proxy_pb2.ObserveRequest, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            sub = self._hub.subscribe(request.match, request.max_rps, request.capture_body)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            return
        except TapLimitError as e:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
            return
        try:
            # Headers now, so the caller knows the tap is in place before any traffic.
            await context.send_initial_metadata(())
            # Encoded here, inside the hub's CPU budget; the method is registered
            # to pass these bytes through (see _add_tap).
            async for batch in self._hub.batches(sub, proxy_pb2.TapBatch.SerializeToString):
                try:
                    await context.write(batch)
                except Exception:
                    # (grpc raises its own internal error type here, and would log it
                    # with a traceback if it escaped a generator handler.)
                    return
        finally:
            self._hub.unsubscribe(sub)


class MetricsService(proxy_pb2_grpc.MetricsServicer):
    """Answers scrapes with the telemetry's cumulative series."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    async def Scrape(
        self, request: proxy_pb2.ScrapeRequest, context: grpc.aio.ServicerContext
    ) -> proxy_pb2.ScrapeResponse:
        return self._telemetry.scrape()


def _add_tap(service: TapService, server: grpc.aio.Server) -> None:
    """Registers Tap.Observe as the generated code would, except that its responses
    are TapBatch messages already encoded by the hub, so they pass as they are."""
    name = proxy_pb2.DESCRIPTOR.services_by_name["Tap"].full_name
    handler = grpc.unary_stream_rpc_method_handler(
        service.Observe, request_deserializer=proxy_pb2.ObserveRequest.FromString,
        response_serializer=None)
    handlers = {"Observe": handler}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


async def start_grpc(telemetry: Telemetry, host: str, port: int,
                     unix: str | None = None) -> grpc.aio.Server:
    """Starts the tap/metrics gRPC server on ``host:port`` (0: any free port).

    Returns the started server; :func:`bound_port` tells the port it got. Stop
    it with ``await server.stop(grace)``; open tap streams are cancelled then.
    Raises RuntimeFailure (one line) when the address cannot be bound.
    """
    server = grpc.aio.server()
    _add_tap(TapService(telemetry), server)
    proxy_pb2_grpc.add_MetricsServicer_to_server(MetricsService(telemetry), server)
    checker = health.aio.HealthServicer()
    for name in ("", *SERVICES):
        await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if unix is not None:  # behind the identity gate (meshtui.proxy.tapgate)
        target = f"unix:{unix}"
    try:
        bound = server.add_insecure_port(target)
    except RuntimeError as e:
        bound = 0
        reason = str(e).splitlines()[0] if str(e) else "address in use?"
    else:
        reason = "address in use?"
    if not bound:
        await server.stop(None)
        raise RuntimeFailure(f"cannot listen on {target} for tap/metrics gRPC: {reason}")
    await server.start()
    _PORTS[server] = bound
    return server


def bound_port(server: grpc.aio.Server) -> int:
    """The port a server from :func:`start_grpc` listens on."""
    return _PORTS[server]
