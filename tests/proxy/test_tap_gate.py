"""Only the mesh may tap: with identity on, a proxy's tap/metrics port lets in the
controller's identity over mutual TLS and nobody else, each refusal counted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from proxymesh import free_port, proxy_config

from meshtui.controller.server import Controller
from meshtui.identity import certs, identity_name
from meshtui.identity.authority import Authority
from meshtui.identity.names import CONTROLLER_IDENTITY
from meshtui.model.inventory import Address
from meshtui.proxy.prom_metrics import metrics_text
from meshtui.proxy.server import ProxyServer
from meshtui.v1 import proxy_pb2, proxy_pb2_grpc


@dataclass
class Gated:
    auth: Authority
    ctl: Controller
    proxy: ProxyServer

    @property
    def tap(self) -> str:
        assert self.proxy.tap_address is not None
        host, port = self.proxy.tap_address
        return f"{host}:{port}"

    def refused(self, reason: str) -> float:
        for line in metrics_text(self.proxy.telemetry).decode().splitlines():
            if line.startswith("meshtui_connection_failures_total{") and \
                    f'reason="{reason}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[Gated]:
    tap = free_port()
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": [
        {"name": "web-0", "namespace": "ns", "deployment": "web",
         "address": "127.0.0.1:1", "proxy": f"127.0.0.1:{tap}"}]}))
    auth = Authority.in_state_dir(tmp_path / "state")
    ctl = Controller(inv, "127.0.0.1:0", identity=auth, scrape_interval_s=0.2)
    await ctl.start()
    proxy = ProxyServer(proxy_config(
        None, tap=Address("127.0.0.1", tap), inventory=str(inv),
        identity=Address("127.0.0.1", ctl.identity_port),
        identity_token=auth.pod_token("ns", "web-0")))
    await proxy.start()
    try:
        yield Gated(auth, ctl, proxy)
    finally:
        await proxy.stop(grace=0.2)
        await ctl.stop(None)


def creds(auth: Authority, name: str | None, *, expired: bool = False
          ) -> grpc.ChannelCredentials:
    root = certs.cert_pem(auth.anchor)
    if name is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    key = certs.new_key()
    if expired:
        leaf = certs.build_cert(subject=name, public_key=key.public_key(),
                                issuer=auth.issuer.subject, signer=auth.issuer_key,
                                lifetime=dt.timedelta(hours=1), ca_pathlen=None,
                                not_before=certs.now() - dt.timedelta(days=2))
    else:
        leaf = auth.issue(name, key.public_key()).leaf
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=certs.key_pem(key),
        certificate_chain=certs.cert_pem(leaf) + certs.cert_pem(auth.issuer))


async def scrape(target: str, cred: grpc.ChannelCredentials | None,
                 timeout: float = 2.0) -> proxy_pb2.ScrapeResponse:
    opts = [("grpc.ssl_target_name_override", identity_name("web", "ns"))]
    ch = (grpc.aio.secure_channel(target, cred, options=opts) if cred is not None
          else grpc.aio.insecure_channel(target))
    async with ch:
        return await proxy_pb2_grpc.MetricsStub(ch).Scrape(proxy_pb2.ScrapeRequest(),
                                                          timeout=timeout)


async def test_only_the_controllers_identity_can_scrape_or_tap(gated: Gated,
                                                                tmp_path: Path) -> None:
    g = gated
    ok = await scrape(g.tap, creds(g.auth, CONTROLLER_IDENTITY))
    assert ok.proxy.workload.pod == "web-0"
    stranger = Authority.in_state_dir(tmp_path / "another-anchor")
    cases = {
        "plain gRPC": (None, "tap_handshake"),
        "no client certificate": (creds(g.auth, None), "tap_handshake"),
        "another trust anchor": (creds(stranger, CONTROLLER_IDENTITY), "tap_handshake"),
        "expired certificate": (creds(g.auth, CONTROLLER_IDENTITY, expired=True),
                                "tap_handshake"),
        "another identity": (creds(g.auth, identity_name("web", "ns")), "tap_identity"),
    }
    for what, (cred, reason) in cases.items():
        before = g.refused(reason)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await scrape(g.tap, cred, timeout=0.5)
        # Cut at the handshake: the client retries connecting until its deadline.
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.DEADLINE_EXCEEDED), what
        for _ in range(100):  # the server counts once it has sent its alert
            if g.refused(reason) > before:
                break
            await asyncio.sleep(0.01)
        assert g.refused(reason) > before, what
    # Tap is refused alike.
    async with grpc.aio.secure_channel(g.tap, creds(g.auth, identity_name("web", "ns")),
                                       options=[("grpc.ssl_target_name_override",
                                                 identity_name("web", "ns"))]) as ch:
        call = proxy_pb2_grpc.TapStub(ch).Observe(proxy_pb2.ObserveRequest(), timeout=0.5)
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in call:
                pass


async def test_the_controller_scrapes_a_gated_proxy(gated: Gated) -> None:
    g = gated
    loop = asyncio.get_running_loop()
    end = loop.time() + 5
    st = g.ctl.store.pods[("ns", "web-0")]
    while st.last_ok is None and loop.time() < end:
        await asyncio.sleep(0.05)
    assert st.last_ok is not None, st.last_error


async def test_the_controller_renews_its_own_certificate_and_goes_on_scraping(
        tmp_path: Path) -> None:
    """Certificates of three seconds: past the first one's life, the controller still
    gets through the gate (on new channels, and its scrapes go on), none refused."""
    tap = free_port()
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": [
        {"name": "web-0", "namespace": "ns", "deployment": "web",
         "address": "127.0.0.1:1", "proxy": f"127.0.0.1:{tap}"}]}))
    auth = Authority.in_state_dir(tmp_path / "state", leaf_lifetime_s=3)
    ctl = Controller(inv, "127.0.0.1:0", identity=auth, scrape_interval_s=0.2)
    await ctl.start()
    proxy = ProxyServer(proxy_config(None, tap=Address("127.0.0.1", tap), inventory=str(inv),
                                     identity=Address("127.0.0.1", ctl.identity_port),
                                     identity_token=auth.pod_token("ns", "web-0")))
    await proxy.start()
    gated = Gated(auth, ctl, proxy)
    try:
        await asyncio.sleep(4.5)  # the controller's first certificate expired at 3 s
        assert ctl.dialer.tls is not None and ctl.dialer.tls.generation >= 1
        ch = ctl.dialer.channel(gated.tap)
        try:
            got = await proxy_pb2_grpc.MetricsStub(ch).Scrape(proxy_pb2.ScrapeRequest(),
                                                              timeout=3)
            assert got.proxy.workload.pod == "web-0"
        finally:
            await ch.close()
        [st] = ctl.store.proxied()
        # The scraper too, on channels made again with the new certificate.
        assert st.last_ok is not None and time.monotonic() - st.last_ok < 1.5, st.last_error
        assert gated.refused("tap_handshake") == 0 and gated.refused("tap_identity") == 0
    finally:
        await proxy.stop(grace=0.2)
        await ctl.stop(None)


async def test_the_controller_pods_proxy_lends_its_identity_to_nobody(tmp_path: Path) -> None:
    """The controller pod's proxy holds the controller's identity, but its outbound port
    answers any local process: a plain client that names a tap port through it (as a
    gRPC authority, or with CONNECT) must get nothing, while the controller itself,
    dialling with its own certificate, still scrapes."""
    tap = free_port()
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": [
        {"name": "web-0", "namespace": "ns", "deployment": "web",
         "address": "127.0.0.1:1", "proxy": f"127.0.0.1:{tap}"},
        {"name": "controller-0", "namespace": "meshtui", "deployment": "controller",
         "address": "127.0.0.3:1", "proxy": "127.0.0.3:2"}]}))
    auth = Authority.in_state_dir(tmp_path / "state")
    ctl = Controller(inv, "127.0.0.1:0", identity=auth, scrape_interval_s=0.2)
    await ctl.start()
    ident = Address("127.0.0.1", ctl.identity_port)
    web = ProxyServer(proxy_config(None, tap=Address("127.0.0.1", tap), inventory=str(inv),
                                   identity=ident, identity_anchor=_anchor_file(auth, tmp_path),
                                   identity_token=auth.pod_token("ns", "web-0")))
    lender = ProxyServer(proxy_config(
        None, pod="controller-0", namespace="meshtui", deployment="controller",
        inventory=str(inv), identity=ident, identity_anchor=_anchor_file(auth, tmp_path),
        identity_token=auth.pod_token("meshtui", "controller-0")))
    await web.start()
    await lender.start()
    try:
        assert lender.identity is not None and lender.identity.name == CONTROLLER_IDENTITY
        assert lender.outbound_address is not None
        out = "{}:{}".format(*lender.outbound_address)
        target = f"127.0.0.1:{tap}"
        async with grpc.aio.insecure_channel(out, options=[
                ("grpc.default_authority", target), ("grpc.enable_http_proxy", 0)]) as ch:
            with pytest.raises(grpc.aio.AioRpcError):
                await proxy_pb2_grpc.MetricsStub(ch).Scrape(proxy_pb2.ScrapeRequest(),
                                                            timeout=1.0)
            call = proxy_pb2_grpc.TapStub(ch).Observe(proxy_pb2.ObserveRequest(), timeout=1.0)
            with pytest.raises(grpc.aio.AioRpcError):
                async for _ in call:
                    pass
        # A CONNECT tunnel to the tap port is relayed in plain: the gate cuts it.
        r, w = await asyncio.open_connection(*lender.outbound_address)
        w.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
        if b" 200 " in head.split(b"\r\n", 1)[0]:
            w.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            back = await asyncio.wait_for(r.read(), 2)
            assert b"\x00\x04" not in back[:5]  # no HTTP/2 SETTINGS: no gRPC server spoke
        w.close()
        # The controller, with its own certificate, gets through.
        end = asyncio.get_running_loop().time() + 5
        st = ctl.store.pods[("ns", "web-0")]
        while st.last_ok is None and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.05)
        assert st.last_ok is not None, st.last_error
    finally:
        await lender.stop(grace=0.2)
        await web.stop(grace=0.2)
        await ctl.stop(None)


def _anchor_file(auth: Authority, d: Path) -> str:
    path = d / "anchor.pem"
    path.write_bytes(certs.cert_pem(auth.anchor))
    return str(path)
