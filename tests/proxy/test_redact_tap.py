"""What ``meshtui proxy``'s tap withholds, seen through a real process and its gRPC
tap: credential headers, secret query parameters, and the user's own names."""

from __future__ import annotations

import asyncio

import grpc
from proxykit import Client, Upstream
from test_command import proxy_process

from meshtui.v1 import proxy_pb2, proxy_pb2_grpc

SECRETS = {"X-Api-Key": "k-123", "Authorization": "Bearer a.b.c", "X-Tenant": "acme-9",
           "X-Session-Id": "sess-42", "User-Agent": "probe/1", "Author": "ann",
           "Referer": "http://u:p@shop/cart?session=s1&item=4"}


async def test_a_proxy_process_redacts_credentials_and_redact_names_in_tap() -> None:
    up = await Upstream().start()
    try:
        with proxy_process("--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0",
                           "--tap", "127.0.0.1:0", "--admin", "off",
                           "--app", f"127.0.0.1:{up.port}",
                           "--redact", "x-tenant") as (_p, addrs):
            tap = addrs["tap"]
            async with grpc.aio.insecure_channel(f"{tap[0]}:{tap[1]}") as ch:
                call = proxy_pb2_grpc.TapStub(ch).Observe(proxy_pb2.ObserveRequest())
                await asyncio.wait_for(call.initial_metadata(), 5)
                c = await Client.connect(addrs["inbound"])
                target = "/hello?token=abc&id=3&Access_Token=zz&author=ann"
                batch = None
                for _ in range(50):  # until the subscription is in place on the proxy
                    assert (await c.request("GET", target, SECRETS)).status == 200
                    try:
                        batch = await asyncio.wait_for(call.read(), 0.2)
                        break
                    except TimeoutError:
                        continue
                await c.close()
                call.cancel()
    finally:
        await up.close()
    assert batch is not None, "no tap batch"
    init = next(e.request_init for e in batch.events if e.HasField("request_init"))
    assert init.path == "/hello?token=<redacted>&id=3&Access_Token=<redacted>&author=ann"
    got = {h.name.lower(): h.value for h in init.headers}
    for name in ("x-api-key", "authorization", "x-tenant", "x-session-id"):
        assert got[name] == b"<redacted>", name
    assert got["user-agent"] == b"probe/1" and got["author"] == b"ann"
    # A URL header's query and userinfo, as a path's.
    assert got["referer"] == b"http://<redacted>@shop/cart?session=<redacted>&item=4"
    # Tap withholds; the app still gets everything as sent.
    _, seen_target, seen = up.seen.requests[-1]
    assert seen_target == target and seen["x-api-key"] == "k-123"
    assert seen["x-tenant"] == "acme-9"
