"""The client-facing gRPC servicers: Mesh, Stats and ResourceTap.

Each turns a request into a call on :mod:`meshtui.controller.stats` or a
:class:`~meshtui.controller.tapfanin.TapFanIn`; a request naming nothing known
is answered with ``INVALID_ARGUMENT`` and a message a user can act on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import grpc

from meshtui.controller import edges, stats
from meshtui.controller.dial import Dialer
from meshtui.controller.stats import BadRequest
from meshtui.controller.store import MeshStore
from meshtui.controller.tapfanin import TapFanIn
from meshtui.v1 import controller_pb2, controller_pb2_grpc

log = logging.getLogger("meshtui.controller")
T = TypeVar("T")


async def _invalid(context: grpc.aio.ServicerContext, e: BadRequest) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))


async def _answer(context: grpc.aio.ServicerContext, fn: Callable[[], T]) -> T:
    """``fn()``, with a BadRequest sent as INVALID_ARGUMENT."""
    try:
        return fn()
    except BadRequest as e:
        await _invalid(context, e)
        raise


class MeshService(controller_pb2_grpc.MeshServicer):
    def __init__(self, store: MeshStore) -> None:
        self.store = store

    async def ListResources(self, request: controller_pb2.ListResourcesRequest,
                            context: grpc.aio.ServicerContext
                            ) -> controller_pb2.ListResourcesResponse:
        return await _answer(context, lambda: stats.list_resources(request, self.store))


class StatsService(controller_pb2_grpc.StatsServicer):
    def __init__(self, store: MeshStore) -> None:
        self.store = store

    async def Summary(self, request: controller_pb2.StatRequest,
                      context: grpc.aio.ServicerContext) -> controller_pb2.StatResponse:
        return await _answer(context, lambda: stats.summary(request, self.store))

    async def Watch(self, request: controller_pb2.WatchStatRequest,
                    context: grpc.aio.ServicerContext
                    ) -> AsyncIterator[controller_pb2.StatResponse]:
        interval = max(request.interval_ms or 1000, 100) / 1000.0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                resp = stats.summary(request.request, self.store)
            except BadRequest as e:
                await _invalid(context, e)
                return
            yield resp
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def History(self, request: controller_pb2.HistoryRequest,
                      context: grpc.aio.ServicerContext) -> controller_pb2.HistoryResponse:
        return await _answer(context, lambda: stats.history(request, self.store))

    async def Edges(self, request: controller_pb2.EdgesRequest,
                    context: grpc.aio.ServicerContext) -> controller_pb2.EdgesResponse:
        return await _answer(context, lambda: edges.edges(request, self.store))


class ResourceTapService(controller_pb2_grpc.ResourceTapServicer):
    def __init__(self, store: MeshStore, dialer: Dialer | None = None) -> None:
        self.store = store
        self.dialer = dialer

    async def Tap(self, request: controller_pb2.TapByResourceRequest,
                  context: grpc.aio.ServicerContext
                  ) -> AsyncIterator[controller_pb2.TapByResourceBatch]:
        try:
            target = stats.check_selector(request.target, self.store, what="tap target")
            to = stats.check_selector(request.to, self.store, what="--to", required=False)
            if request.max_rps < 0:
                raise BadRequest("max_rps must be 0 (unlimited) or more")
        except BadRequest as e:
            await _invalid(context, e)
            return
        assert target is not None
        fan = TapFanIn(self.store, target, to, request.match, request.max_rps,
                       dialer=self.dialer, capture_body=request.capture_body)
        if not fan.sources():
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"{target.describe()} has no meshed pods to tap")
            return
        async for batch in fan.batches():
            yield batch
