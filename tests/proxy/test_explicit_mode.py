"""Explicit mode (no iptables): an app's calls reach the outbound listener as
HTTP_PROXY requests or by Host, and with the inventory a call to a service is
carried to the peer pod's proxy, so both proxies see it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from proxykit import Client, Upstream
from proxymesh import Mesh, free_port, proxy_config

from meshtui.model.inventory import Address
from meshtui.proxy.server import ProxyServer
from meshtui.proxy.telemetry import Direction


@dataclass
class TwoPods:
    app: Upstream  # emoji's app
    client_proxy: ProxyServer  # web's sidecar: web calls out through it
    server_proxy: ProxyServer  # emoji's sidecar
    app_addr: tuple[str, int]


@pytest.fixture
async def two_pods(tmp_path: Path) -> AsyncIterator[TwoPods]:
    app = await Upstream().start()
    web_in, emoji_in = free_port(), free_port()
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({
        "pods": [
            {"name": "web-0", "namespace": "emojivoto", "deployment": "web",
             "address": f"127.0.0.1:{free_port()}", "proxy": "127.0.0.1:1",
             "inbound": f"127.0.0.1:{web_in}"},
            {"name": "emoji-0", "namespace": "emojivoto", "deployment": "emoji",
             "address": f"127.0.0.1:{app.port}", "proxy": "127.0.0.1:2",
             "inbound": f"127.0.0.1:{emoji_in}"},
        ],
        "services": [{"name": "emoji-svc", "namespace": "emojivoto", "port": 8080,
                      "endpoints": [f"127.0.0.1:{app.port}"]}],
    }))
    client = ProxyServer(proxy_config(
        None, inbound=Address("127.0.0.1", web_in), pod="web-0", namespace="emojivoto",
        deployment="web", inventory=str(inv)))
    server = ProxyServer(proxy_config(
        app.port, inbound=Address("127.0.0.1", emoji_in), pod="emoji-0", namespace="emojivoto",
        deployment="emoji", inventory=str(inv)))
    await client.start()
    await server.start()
    try:
        yield TwoPods(app, client, server, ("127.0.0.1", app.port))
    finally:
        await client.stop(grace=0.1)
        await server.stop(grace=0.1)
        await app.close()


async def test_service_call_goes_through_both_proxies(two_pods: TwoPods) -> None:
    c = await Client.connect(two_pods.client_proxy.outbound_address)  # type: ignore[arg-type]
    # As an HTTP_PROXY client sends it: absolute form.
    r = await c.request("GET", "http://emoji-svc.emojivoto:8080/hello",
                        {"host": "emoji-svc.emojivoto:8080"})
    assert (r.status, r.body) == (200, b"hello")
    # Routed by Host alone, too.
    r = await c.request("GET", "/hello", {"host": "emoji-svc.emojivoto.svc.cluster.local:8080"})
    assert r.status == 200
    routes = two_pods.client_proxy.telemetry.routes()
    assert sorted(o.authority for o in routes) == [
        "emoji-svc.emojivoto.svc.cluster.local:8080", "emoji-svc.emojivoto:8080"]
    for out in routes:  # named from the inventory: the service's pod
        assert out.direction == Direction.OUTBOUND
        assert (out.dst_wl.deployment, out.dst_wl.pod) == ("emoji", "emoji-0")
        assert sum(st.count for st in out.responses.values()) == 1
    inbound = two_pods.server_proxy.telemetry.routes()
    assert sum(r.requests for r in inbound) == 2
    assert {r.direction for r in inbound} == {Direction.INBOUND}
    # The app got origin-form targets with the service's authority as Host.
    assert [(m, t, h["host"]) for m, t, h in two_pods.app.seen.requests] == [
        ("GET", "/hello", "emoji-svc.emojivoto:8080"),
        ("GET", "/hello", "emoji-svc.emojivoto.svc.cluster.local:8080")]


async def test_absolute_form_to_an_address_without_inventory(mesh: Mesh) -> None:
    c = await Client.connect(mesh.outbound)
    r = await c.request("GET", f"http://127.0.0.1:{mesh.app.port}/hello?x=1")
    assert r.body == b"hello"
    _method, target, headers = mesh.app.seen.requests[0]
    assert target == "/hello?x=1" and headers["host"] == f"127.0.0.1:{mesh.app.port}"
    [route] = mesh.proxy.telemetry.routes()
    assert route.direction == Direction.OUTBOUND
    assert route.dst_addr == f"127.0.0.1:{mesh.app.port}"


async def test_requests_that_cannot_be_routed(mesh: Mesh) -> None:
    c = await Client.connect(mesh.outbound)
    port = mesh.outbound[1]
    r = await c.request("GET", f"http://127.0.0.1:{port}/")  # itself: would loop forever
    assert r.status == 508 and "loop" in (r.header("meshtui-proxy-error") or "")
    c = await Client.connect(mesh.outbound)
    r = await c.request("GET", "/", {"host": "bad:authority:x"})
    assert r.status == 400
    assert mesh.app.seen.requests == []
