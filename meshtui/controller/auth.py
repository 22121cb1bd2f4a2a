"""The controller API's bearer check: every call but health, reflection and the
proxies' Identity.Certify (which carries a pod token of its own) needs the credential."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from meshtui.identity.credential import METADATA_KEY, bearer

OPEN = ("/grpc.health.v1.", "/grpc.reflection.", "/meshtui.v1.Identity/Certify")


class BearerCheck(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._want = bearer(token).encode()

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler]],
            details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(OPEN):
            return handler
        for key, value in details.invocation_metadata or ():  # type: ignore[attr-defined]
            got = value.encode() if isinstance(value, str) else value
            if key == METADATA_KEY and hmac.compare_digest(got, self._want):
                return handler
        return _denied(handler)


def _denied(handler: Any) -> grpc.RpcMethodHandler:
    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                            "this controller needs its credential")

    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny, **kw)
    return grpc.unary_unary_rpc_method_handler(deny, **kw)
