"""The proxy's gRPC endpoint over a real loopback port, with a real grpc.aio client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from meshtui.proxy.grpc_service import bound_port, start_grpc
from meshtui.proxy.tap_hub import TapHub
from meshtui.proxy.telemetry import Direction, Identity, Telemetry
from meshtui.v1 import common_pb2, proxy_pb2, proxy_pb2_grpc

IDENT = Identity("emojivoto", "web", "web-0")


def record(tel: Telemetry, n: int, *, path: str = "/api/list", status: int = 200) -> None:
    for _ in range(n):
        obs = tel.request(Direction.INBOUND, ("127.0.0.1", 40000), ("127.0.0.1", 8080), 3,
                          "GET", "http", "web-svc:80", path, [(b"host", b"web-svc:80")])
        obs.response_start(status, [(b"content-length", b"2")])
        obs.response_end(2)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Telemetry, grpc.aio.Channel]]:
    tel = Telemetry(IDENT, hub=TapHub(lambda: 0.0, queue_capacity=30, linger=0.002))
    server = await start_grpc(tel, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{bound_port(server)}")
    try:
        yield tel, channel
    finally:
        await channel.close()
        await server.stop(None)


async def wait_for(cond: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_observe_streams_matching_events_in_batches(
    served: tuple[Telemetry, grpc.aio.Channel],
) -> None:
    tel, channel = served
    call = proxy_pb2_grpc.TapStub(channel).Observe(proxy_pb2.ObserveRequest(
        match=common_pb2.TapMatch(path_prefix="/api/")))
    await asyncio.wait_for(call.initial_metadata(), 2)
    assert len(tel.hub.subscribers) == 1
    record(tel, 4)
    record(tel, 3, path="/healthz")
    batch = await asyncio.wait_for(call.read(), 2)
    assert batch.dropped == 0
    assert [e.WhichOneof("event") for e in batch.events] == [
        "request_init", "response_init", "response_end"] * 4
    assert batch.events[0].request_init.path == "/api/list"
    call.cancel()
    await wait_for(lambda: tel.hub.subscribers == ())


async def test_observe_reports_losses_of_a_full_queue(
    served: tuple[Telemetry, grpc.aio.Channel],
) -> None:
    tel, channel = served
    call = proxy_pb2_grpc.TapStub(channel).Observe(proxy_pb2.ObserveRequest())
    await asyncio.wait_for(call.initial_metadata(), 2)
    record(tel, 100)  # without yielding: the queue (30 events) overflows
    first = await asyncio.wait_for(call.read(), 2)
    assert (len(first.events), first.dropped) == (30, 270)
    record(tel, 2)
    second = await asyncio.wait_for(call.read(), 2)
    assert (len(second.events), second.dropped) == (6, 0)
    call.cancel()


async def test_a_client_that_reads_nothing_loses_events_but_recording_goes_on(
    served: tuple[Telemetry, grpc.aio.Channel],
) -> None:
    tel, channel = served
    call = proxy_pb2_grpc.TapStub(channel).Observe(proxy_pb2.ObserveRequest())
    await asyncio.wait_for(call.initial_metadata(), 2)
    (sub,) = tel.hub.subscribers
    # Long paths fill the transport's windows quickly; the stream then stalls.
    for _ in range(200):
        record(tel, 10, path="/" + "x" * 2000)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert sub.dropped > 0
    assert len(sub.queue) <= 30
    assert sum(r.count for r in tel.scrape().requests) == 2000
    # What did arrive, plus what was counted lost, is everything that happened.
    seen = dropped = 0
    while seen + dropped < 6000:
        b = await asyncio.wait_for(call.read(), 2)
        seen += len(b.events)
        dropped += b.dropped
    assert seen + dropped == 6000
    call.cancel()


async def test_bad_rate_is_invalid_argument(served: tuple[Telemetry, grpc.aio.Channel]) -> None:
    _, channel = served
    call = proxy_pb2_grpc.TapStub(channel).Observe(proxy_pb2.ObserveRequest(max_rps=-3))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call.read()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_scrape(served: tuple[Telemetry, grpc.aio.Channel]) -> None:
    tel, channel = served
    record(tel, 5)
    record(tel, 2, status=502)
    resp = await proxy_pb2_grpc.MetricsStub(channel).Scrape(proxy_pb2.ScrapeRequest(), timeout=2)
    assert resp.proxy.workload.pod == "web-0" and resp.proxy.run_id == tel.run_id
    assert [r.count for r in resp.requests] == [7]
    assert {(r.status_code, r.success): r.count for r in resp.responses} == {
        (200, True): 5, (502, False): 2}


async def test_health_serving(served: tuple[Telemetry, grpc.aio.Channel]) -> None:
    _, channel = served
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", "meshtui.v1.Tap", "meshtui.v1.Metrics"):
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(served: tuple[Telemetry, grpc.aio.Channel]) -> None:
    _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    resp = await asyncio.wait_for(call.read(), 2)
    names = {s.name for s in resp.list_services_response.service}
    assert {"meshtui.v1.Tap", "meshtui.v1.Metrics", "grpc.health.v1.Health"} <= names
    await call.write(
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="meshtui.v1.Tap"))
    resp = await asyncio.wait_for(call.read(), 2)
    assert resp.file_descriptor_response.file_descriptor_proto
    await call.done_writing()

