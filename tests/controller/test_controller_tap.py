"""Tap by resource through the controller: merged, limited, named, every loss counted."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from ctlkit import Mesh, until
from fakeproxy import OUTBOUND, request_events

from meshtui.v1 import common_pb2, controller_pb2

DEPLOY = common_pb2.DEPLOYMENT
WEB = common_pb2.ResourceSelector(type=DEPLOY, namespace="emojivoto", name="web")
EMOJI_APP = ("127.0.0.1", 18082)
WEB0_APP = ("127.0.0.1", 18080)


def tap_request(max_rps: float = 0.0, **kw: object) -> controller_pb2.TapByResourceRequest:
    return controller_pb2.TapByResourceRequest(target=WEB, max_rps=max_rps, **kw)  # type: ignore


class Collector:
    """Reads a tap stream in the background and keeps everything it got."""

    def __init__(self, call: grpc.aio.UnaryStreamCall) -> None:
        self.call = call
        self.events: list[common_pb2.TapEvent] = []
        self.drops: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.rate_limited = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for batch in self.call:
            self.events.extend(batch.events)
            for d in batch.drops:
                self.drops[d.pod] = self.drops.get(d.pod, 0) + d.dropped
                if d.error:
                    self.errors[d.pod] = d.error
            self.rate_limited += batch.rate_limited

    def inits(self) -> int:
        return sum(1 for e in self.events if e.WhichOneof("event") == "request_init")

    async def close(self) -> None:
        self.call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def subscribed(m: Mesh, *pods: str) -> None:
    await until(lambda: all(m.fakes[p].active_observers == 1 for p in pods), 3.0)


async def test_merges_the_targets_streams_both_ways_names_peers_and_passes_drops_on(
    mesh: Mesh,
) -> None:
    c = Collector(mesh.tap.Tap(tap_request()))
    try:
        await subscribed(mesh, "web-0", "web-1")
        assert not mesh.fakes["emoji-0"].observe_requests  # not a target: never tapped
        for p in ("web-0", "web-1"):
            (req,) = mesh.fakes[p].observe_requests
            # What its pods serve and what they call, as Linkerd's tap of a resource.
            assert req.match.direction == common_pb2.DIRECTION_UNSPECIFIED
        mesh.fakes["web-0"].emit(request_events(1, 1, src=EMOJI_APP, dst=WEB0_APP))
        mesh.fakes["web-1"].emit(request_events(2, 1, src=EMOJI_APP, dst=("127.0.0.1", 18081)),
                                 dropped=7)
        await until(lambda: len(c.events) == 6 and c.drops.get("web-1") == 7, 3.0)
        for e in c.events:  # the proxies named neither side: the inventory did
            assert e.source.workload.pod == "emoji-0"
            assert e.source.workload.deployment == "emoji"
            assert e.destination.workload.pod in ("web-0", "web-1")
        assert {e.id.base for e in c.events} == {1, 2}
        assert "web-0" not in c.drops
    finally:
        await c.close()


async def test_to_taps_the_targets_outbound_with_a_destination_match(mesh: Mesh) -> None:
    to = common_pb2.ResourceSelector(type=DEPLOY, namespace="emojivoto", name="voting")
    c = Collector(mesh.tap.Tap(tap_request(to=to)))
    try:
        await subscribed(mesh, "web-0", "web-1")
        for p in ("web-0", "web-1"):
            (req,) = mesh.fakes[p].observe_requests
            assert req.match.direction == OUTBOUND
            assert req.match.destination.deployment == "voting"
            assert req.match.destination.namespace == "emojivoto"
        assert not mesh.fakes["voting-0"].observe_requests
    finally:
        await c.close()


async def test_max_rps_holds_across_sources_and_every_skipped_request_is_counted(
    mesh: Mesh,
) -> None:
    c = Collector(mesh.tap.Tap(tap_request(max_rps=20)))
    try:
        await subscribed(mesh, "web-0", "web-1")
        t0 = time.monotonic()
        sent = 0
        for i in range(10):
            for n, p in enumerate(("web-0", "web-1")):
                events = []
                for k in range(20):
                    events += request_events(n, i * 100 + k, src=EMOJI_APP, dst=WEB0_APP)
                mesh.fakes[p].emit(events)
                sent += 20
            await asyncio.sleep(0.05)
        await until(lambda: c.inits() + c.rate_limited == sent, 3.0)
        elapsed = time.monotonic() - t0
        assert c.inits() <= 20 + 20 * elapsed + 1  # one second of burst, then 20/s
        assert c.inits() >= 20
        # Admitted requests come whole; skipped ones leave nothing behind.
        assert len(c.events) == 3 * c.inits()
    finally:
        await c.close()


async def test_client_going_away_cancels_every_upstream_stream(mesh: Mesh) -> None:
    c = Collector(mesh.tap.Tap(tap_request()))
    await subscribed(mesh, "web-0", "web-1")
    await c.close()
    await until(lambda: all(mesh.fakes[p].active_observers == 0 for p in ("web-0", "web-1")),
                3.0)
    assert all(mesh.fakes[p].cancelled_observers == 1 for p in ("web-0", "web-1"))


async def test_a_proxy_going_away_is_reported_and_the_others_carry_on(mesh: Mesh) -> None:
    c = Collector(mesh.tap.Tap(tap_request()))
    try:
        await subscribed(mesh, "web-0", "web-1")
        await mesh.fakes["web-1"].stop()
        await until(lambda: "web-1" in c.errors, 3.0)
        mesh.fakes["web-0"].emit(request_events(5, 1, src=EMOJI_APP, dst=WEB0_APP))
        await until(lambda: len(c.events) == 3, 3.0)
        assert "web-0" not in c.errors
        # It comes back: its stream is reopened.
        await mesh.fakes["web-1"].start(mesh.fakes["web-1"].port)
        await subscribed(mesh, "web-1")
        mesh.fakes["web-1"].emit(request_events(6, 1, src=EMOJI_APP, dst=WEB0_APP))
        await until(lambda: len(c.events) == 6, 3.0)
    finally:
        await c.close()


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (common_pb2.ResourceSelector(type=DEPLOY, namespace="emojivoto", name="nope"),
         grpc.StatusCode.INVALID_ARGUMENT),
        (common_pb2.ResourceSelector(), grpc.StatusCode.INVALID_ARGUMENT),
        (common_pb2.ResourceSelector(type=DEPLOY, namespace="default", name="lonely"),
         grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_bad_targets_fail_with_a_clear_status(
    mesh: Mesh, target: common_pb2.ResourceSelector, code: grpc.StatusCode
) -> None:
    call = mesh.tap.Tap(controller_pb2.TapByResourceRequest(target=target))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == code
    assert info.value.details()
