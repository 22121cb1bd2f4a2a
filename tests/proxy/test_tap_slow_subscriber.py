"""A real proxy with a tap client that reads nothing: traffic flows, losses are counted."""

from __future__ import annotations

import asyncio
import re

import grpc
from proxykit import Client, Upstream
from proxymesh import proxy_config

from meshtui.model.inventory import Address
from meshtui.proxy.server import ProxyServer
from meshtui.proxy.tap_hub import TapHub
from meshtui.proxy.telemetry import Identity, Telemetry
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc

LOOPBACK = Address("127.0.0.1", 0)


async def metric(admin: tuple[str, int], name: str) -> float:
    r, w = await asyncio.open_connection(*admin)
    w.write(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
    text = (await asyncio.wait_for(r.read(), 5)).decode()
    w.close()
    values = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return sum(float(v) for v in values)


async def test_a_stuck_tap_client_loses_events_and_slows_nothing() -> None:
    app = await Upstream().start()
    tel = Telemetry(Identity("ns", "web", "web-0"),
                    hub=TapHub(lambda: 0.0, queue_capacity=300, linger=0.001))
    proxy = ProxyServer(proxy_config(app.port, tap=LOOPBACK, admin=LOOPBACK), telemetry=tel)
    await proxy.start()
    assert proxy.tap_address and proxy.admin_address
    channel = grpc.aio.insecure_channel("{}:{}".format(*proxy.tap_address))
    try:
        stuck = proxy_pb2_grpc.TapStub(channel).Observe(proxy_pb2.ObserveRequest())
        await asyncio.wait_for(stuck.initial_metadata(), 2)

        async def client(n: int) -> list[int]:
            c = await Client.connect(proxy.inbound_address)  # type: ignore[arg-type]
            # Large headers fill the stream's transport windows quickly.
            statuses = [(await c.request("GET", "/hello", {"x-pad": "p" * 20_000})).status
                        for _ in range(n)]
            await c.close()
            return statuses

        results = await asyncio.wait_for(asyncio.gather(*(client(150) for _ in range(4))), 30)
        assert [s for r in results for s in r] == [200] * 600
        assert await metric(proxy.admin_address, "request_total") == 600
        dropped = await metric(proxy.admin_address, "meshtui_tap_dropped_events_total")
        assert dropped > 0
        (sub,) = tel.hub.subscribers
        # Capacity, plus at most the later events of requests admitted while in flight.
        assert len(sub.queue) <= 300 + 2 * 4

        # Reading at last: what arrives plus what was reported lost is every event.
        seen = lost = 0
        while seen + lost < 1800:
            batch = await asyncio.wait_for(stuck.read(), 5)
            seen += len(batch.events)
            lost += batch.dropped
        assert seen + lost == 1800 and lost == sub.dropped
        stuck.cancel()
    finally:
        await channel.close()
        await proxy.stop(grace=0.2)
        await app.close()
