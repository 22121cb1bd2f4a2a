"""Mutual TLS between two meshed proxies, with a real controller issuing their
certificates: what the apps send travels inside, plain clients still get through,
and a stranger's certificate is refused at the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from proxykit import Client, Upstream, read_response
from proxymesh import free_port, proxy_config

from meshtui.controller.server import Controller
from meshtui.identity import identity_name
from meshtui.identity.authority import Authority
from meshtui.identity.workload import WorkloadIdentity, grpc_asker
from meshtui.model.inventory import Address
from meshtui.proxy.mtls import client_hello_name
from meshtui.proxy.prom_metrics import metrics_text
from meshtui.proxy.server import ProxyServer

WEB = identity_name("web", "ns")
EMOJI = identity_name("emoji", "ns")


@dataclass
class TlsMesh:
    auth: Authority
    ctl: Controller
    web: ProxyServer  # the calling pod's proxy (its outbound is used)
    emoji: ProxyServer  # the called pod's proxy (its inbound is the peer)
    app: Upstream
    app_addr: str

    def metrics(self, proxy: ProxyServer) -> str:
        return metrics_text(proxy.telemetry).decode()


@pytest.fixture
async def tls_mesh(tmp_path: Path) -> AsyncIterator[TlsMesh]:
    async with started(tmp_path) as m:
        yield m


@contextlib.asynccontextmanager
async def started(tmp_path: Path, lifetime_s: float = 24 * 3600.0) -> AsyncIterator[TlsMesh]:
    app = await Upstream().start()
    app_addr = f"127.0.0.1:{app.port}"
    emoji_in = free_port()
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": [
        {"name": "web-0", "namespace": "ns", "deployment": "web",
         "address": "127.0.0.2:1", "proxy": "127.0.0.1:1"},
        {"name": "emoji-0", "namespace": "ns", "deployment": "emoji", "address": app_addr,
         "proxy": "127.0.0.1:2", "inbound": f"127.0.0.1:{emoji_in}"},
    ]}))
    auth = Authority.in_state_dir(tmp_path / "state", leaf_lifetime_s=lifetime_s)
    ctl = Controller(inv, "127.0.0.1:0", identity=auth)
    await ctl.start()
    ident = Address("127.0.0.1", ctl.identity_port)
    emoji = ProxyServer(proxy_config(
        app.port, inbound=Address("127.0.0.1", emoji_in), pod="emoji-0", deployment="emoji",
        inventory=str(inv), identity=ident, identity_token=auth.pod_token("ns", "emoji-0")))
    web = ProxyServer(proxy_config(
        None, inventory=str(inv), identity=ident,
        identity_token=auth.pod_token("ns", "web-0")))
    await emoji.start()
    await web.start()
    try:
        yield TlsMesh(auth, ctl, web, emoji, app, app_addr)
    finally:
        for p in (web, emoji):
            await p.stop(grace=0.2)
        await app.close()
        await ctl.stop(None)


async def test_http_and_upgraded_streams_travel_over_mutual_tls(tls_mesh: TlsMesh) -> None:
    m = tls_mesh
    assert m.web.outbound_address is not None
    taps = [p.telemetry.hub.subscribe() for p in (m.web, m.emoji)]
    c = await Client.connect(m.web.outbound_address)
    try:
        for _ in range(3):  # keep-alive: one TLS connection carries them all
            r = await c.request("GET", "/hello", {"host": m.app_addr})
            assert (r.status, r.body) == (200, b"hello")
        r = await c.request("GET", "/ws", {"host": m.app_addr, "connection": "upgrade",
                                           "upgrade": "websocket"})
        assert r.status == 101
        await c.send_raw(b"opaque bytes")
        assert await c.reader.readexactly(12) == b"OPAQUE BYTES"
    finally:
        await c.close()
    inbound = m.metrics(m.emoji)
    outbound = m.metrics(m.web)
    for proxy, sub in zip((m.web, m.emoji), taps, strict=True):
        batch = proxy.telemetry.hub.take_batch(sub)
        assert batch.events and all(ev.tls for ev in batch.events)
    for text, who in ((inbound, f'client_id="{WEB}"'), (outbound, f'server_id="{EMOJI}"')):
        for family in ("request_total{", "tcp_open_total{"):
            line = next(x for x in text.splitlines() if x.startswith(family))
            assert 'tls="true"' in line and who in line, line
    assert m.app.seen.connections >= 1


async def test_large_bodies_both_ways_and_a_slow_reader_over_mutual_tls(
        tls_mesh: TlsMesh) -> None:
    """Megabytes each way cross many TLS records and fill the sockets' buffers: every
    byte arrives in order, the slow reader's backpressure included."""
    m = tls_mesh
    assert m.web.outbound_address is not None
    body = os.urandom(6 * 1024 * 1024)
    c = await Client.connect(m.web.outbound_address)
    try:
        r = await asyncio.wait_for(c.request("POST", "/echo", {"host": m.app_addr}, body), 30)
        assert r.status == 200 and hashlib.sha256(r.body).digest() == \
            hashlib.sha256(body).digest()
        # The same again, read a little at a time: the proxies must hold back, not drop.
        c.writer.write(f"POST /echo HTTP/1.1\r\nhost: {m.app_addr}\r\n"
                       f"content-length: {len(body)}\r\n\r\n".encode() + body)
        got = bytearray()
        head = await asyncio.wait_for(c.reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200")
        while len(got) < len(body):
            got += await asyncio.wait_for(c.reader.read(64 * 1024), 30)
            await asyncio.sleep(0.001)
        assert bytes(got) == body
    finally:
        await c.close()


async def test_plain_client_still_served_and_counted_without_identity(
        tls_mesh: TlsMesh) -> None:
    m = tls_mesh
    assert m.emoji.inbound_address is not None
    sub = m.emoji.telemetry.hub.subscribe()
    c = await Client.connect(m.emoji.inbound_address)
    try:
        r = await c.request("GET", "/hello")
        assert (r.status, r.body) == (200, b"hello")
    finally:
        await c.close()
    batch = m.emoji.telemetry.hub.take_batch(sub)
    assert batch.events and not any(ev.tls for ev in batch.events)
    text = m.metrics(m.emoji)
    line = next(x for x in text.splitlines() if x.startswith("request_total{"))
    assert 'tls="no_identity"' in line and "client_id" not in line


async def test_an_unmeshed_clients_own_tls_goes_to_the_app_untouched(tls_mesh: TlsMesh) -> None:
    """A client that speaks TLS to the app itself (its server name is the app's, not
    this pod's identity) is relayed as opaque bytes, as without identity: the proxy
    does not answer its ClientHello with the mesh's certificate."""
    m = tls_mesh
    assert m.emoji.inbound_address is not None
    before = m.app.seen.connections
    r, w = await asyncio.open_connection(*m.emoji.inbound_address)
    w.write(hello("app.example"))
    deadline = asyncio.get_running_loop().time() + 5
    while m.app.seen.connections == before:  # the bytes went on to the app
        assert asyncio.get_running_loop().time() < deadline, "never reached the app"
        await asyncio.sleep(0.02)
    # No ServerHello came back: the app (plain HTTP) waits for a request head.
    with contextlib.suppress(TimeoutError):
        assert not (await asyncio.wait_for(r.read(1), 0.5)).startswith(b"\x16")
    w.close()
    assert "tls_handshake" not in m.metrics(m.emoji)


def hello(server_name: str | None) -> bytes:
    """A real ClientHello (OpenSSL's, through Python's ssl), asking for ``server_name``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_the_server_name_is_read_from_a_client_hello() -> None:
    first = hello(EMOJI)
    assert client_hello_name(first) == (True, EMOJI)
    assert client_hello_name(hello(None)) == (True, None)
    assert client_hello_name(first[:40]) == (False, None)
    assert client_hello_name(first[:5] + b"\x01\x00") == (False, None)
    broken = first[:5] + bytes(len(first) - 5)
    assert client_hello_name(broken) == (True, None)


async def test_certificate_from_another_anchor_is_refused_at_handshake(
        tls_mesh: TlsMesh, tmp_path: Path) -> None:
    m = tls_mesh
    other = Authority.in_state_dir(tmp_path / "other")
    inv = tmp_path / "inventory.json"
    ctl2 = Controller(inv, "127.0.0.1:0", identity=other)
    await ctl2.start()
    try:
        stranger = WorkloadIdentity(WEB, grpc_asker(
            f"127.0.0.1:{ctl2.identity_port}", "ns", "web-0", other.pod_token("ns", "web-0")))
        await stranger.refresh()
        assert m.emoji.inbound_address is not None
        host, port = m.emoji.inbound_address
        with pytest.raises((ssl.SSLError, ConnectionError)):
            r, w = await asyncio.open_connection(host, port, ssl=stranger.client_ctx,
                                                 server_hostname=EMOJI)
            w.write(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n")
            await read_response(r)
        assert m.app.seen.requests == []
        await asyncio.sleep(0.05)
        assert 'reason="tls_handshake"' in m.metrics(m.emoji)
    finally:
        with contextlib.suppress(Exception):
            await ctl2.stop(None)


async def test_renewal_under_load_fails_no_request(tmp_path: Path) -> None:
    # Certificates of 2 s: both proxies renew at ~1.4 s while requests keep coming,
    # on a kept-alive connection and on new ones.
    async with started(tmp_path, lifetime_s=2.0) as m:
        assert m.web.outbound_address is not None and m.web.identity is not None
        first = m.web.identity.bundle.leaf.serial_number
        kept = await Client.connect(m.web.outbound_address)
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.5
        n = 0
        try:
            while loop.time() < end:
                r = await kept.request("GET", "/hello", {"host": m.app_addr})
                assert r.status == 200
                c = await Client.connect(m.web.outbound_address)
                r = await c.request("GET", "/hello", {"host": m.app_addr,
                                                      "connection": "close"})
                assert r.status == 200
                await c.close()
                n += 2
        finally:
            await kept.close()
        assert m.web.identity.renewals >= 1 and m.emoji.identity is not None
        assert m.emoji.identity.renewals >= 1
        assert m.web.identity.bundle.leaf.serial_number != first
        assert n > 20
        for proxy in (m.web, m.emoji):
            assert "failure" not in "".join(
                x for x in m.metrics(proxy).splitlines() if x.startswith("response_total{"))


def test_identity_without_a_token_is_bad_usage(tmp_path: Path) -> None:
    import argparse

    from meshtui.errors import UsageError
    from meshtui.proxy.config import add_arguments, from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    with pytest.raises(UsageError, match="needs the pod's token"):
        from_args(p.parse_args(["--identity", "127.0.0.1:8086"]), {})
    tok = tmp_path / "token"
    tok.write_text("abc\n")
    cfg = from_args(p.parse_args(["--identity", "127.0.0.1:8086"]),
                    {"MESHTUI_IDENTITY_TOKEN_FILE": str(tok)})
    assert cfg.identity_token == "abc"


async def test_connections_in_their_tls_handshake_count_against_the_cap(
        tmp_path: Path) -> None:
    """Forty clients that open a ClientHello and stall: the listener's cap (4) holds
    them too, the rest are refused and counted, and a finished or failed handshake
    gives its slot back."""
    async with started(tmp_path) as m:
        emoji = m.emoji
        assert emoji.inbound is not None and emoji.inbound_address is not None
        emoji.inbound.max_conns = 4
        stalled = []
        for _ in range(40):
            r, w = await asyncio.open_connection(*emoji.inbound_address)
            w.write(b"\x16\x03\x01\x02\x00")  # a ClientHello's first bytes, and no more
            stalled.append((r, w))
        await asyncio.sleep(0.5)  # detection, then the handshakes that were let in
        assert emoji.inbound.open_conns <= 4
        assert 'reason="max_connections"' in m.metrics(emoji)
        for _r, w in stalled:
            w.close()
        deadline = asyncio.get_running_loop().time() + 5
        while emoji.inbound.open_conns and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert emoji.inbound.open_conns == 0  # every slot given back


async def test_an_unreadable_trust_anchor_ends_the_start_in_one_line(tmp_path: Path) -> None:
    from meshtui.errors import RuntimeFailure

    bad = tmp_path / "anchor.crt"
    bad.write_text("not a certificate")
    auth = Authority.in_state_dir(tmp_path / "state")
    proxy = ProxyServer(proxy_config(None, identity=Address("127.0.0.1", free_port()),
                                     identity_token=auth.pod_token("ns", "web-0"),
                                     identity_anchor=str(bad)))
    with pytest.raises(RuntimeFailure, match="cannot read the trust anchor"):
        await proxy.start()
    await proxy.stop(grace=0.1)


async def test_the_token_file_is_read_again_at_each_renewal(tmp_path: Path) -> None:
    """Tokens expire: whoever hands them out writes new ones into the pod's file, and a
    proxy's renewal sends what the file holds then."""
    from meshtui.identity.names import TOKEN_LIFETIME_S
    from meshtui.identity.workload import IdentityError

    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": [
        {"name": "web-0", "namespace": "ns", "deployment": "web", "address": "127.0.0.2:1",
         "proxy": "127.0.0.1:1"}]}))
    auth = Authority.in_state_dir(tmp_path / "state")
    ctl = Controller(inv, "127.0.0.1:0", identity=auth)
    await ctl.start()
    token = tmp_path / "token"
    token.write_text(auth.pod_token("ns", "web-0"))
    web = ProxyServer(proxy_config(None, inventory=str(inv),
                                   identity=Address("127.0.0.1", ctl.identity_port),
                                   identity_token=token.read_text(),
                                   identity_token_file=str(token)))
    await web.start()
    try:
        assert web.identity is not None
        token.write_text(auth.pod_token("ns", "web-0", now=0.0))  # ended long ago
        with pytest.raises(IdentityError, match="expired"):
            await web.identity.refresh()
        token.write_text(auth.pod_token("ns", "web-0", lifetime_s=TOKEN_LIFETIME_S))
        assert (await web.identity.refresh()).name == WEB
    finally:
        await web.stop(grace=0.2)
        await ctl.stop(None)


async def test_an_identity_endpoint_under_another_anchor_ends_the_start_in_one_line(
        tmp_path: Path) -> None:
    """A proxy given the anchor, pointed at a controller of another mesh: it sends no
    token, and says so in one line (exit 1)."""
    import sys

    from meshtui.identity import certs

    mesh = Authority.in_state_dir(tmp_path / "mesh")
    anchor = tmp_path / "anchor.crt"
    anchor.write_bytes(certs.cert_pem(mesh.anchor))
    rogue_auth = Authority.in_state_dir(tmp_path / "rogue")
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": [
        {"name": "web-0", "namespace": "ns", "deployment": "web", "address": "127.0.0.2:1",
         "proxy": "127.0.0.1:1"}]}))
    rogue = Controller(inv, "127.0.0.1:0", identity=rogue_auth)
    await rogue.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
        env["MESHTUI_IDENTITY_TOKEN"] = mesh.pod_token("ns", "web-0")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meshtui", "proxy", "--inbound", "127.0.0.1:0",
            "--outbound", "127.0.0.1:0", "--pod", "web-0", "--namespace", "ns",
            "--deployment", "web", "--inventory", str(inv),
            "--identity", f"127.0.0.1:{rogue.identity_port}",
            "--identity-trust-anchor", str(anchor),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        lines = err.decode().splitlines()
        assert proc.returncode == 1, lines
        assert len(lines) == 1 and "does not present the controller's identity" in lines[0]
        assert rogue.identity is not None and rogue.identity.refused == 0
    finally:
        await rogue.stop(None)


def test_a_meshed_pods_own_address_is_its_identity_as_its_inbound_port_is() -> None:
    """In transparent mode a caller's proxy dials the pod's address (iptables there
    hands it to the inbound proxy): it must be wrapped in mutual TLS too. Tap ports
    never are (only the controller's own certificate may open them)."""
    from meshtui.model.inventory import Address, Inventory, Pod
    from meshtui.proxy.mtls import MeshTls

    voting = Pod(name="voting-0", namespace="emojivoto", deployment="voting",
                 address=Address("10.77.0.13", 8080), proxy=Address("10.77.0.13", 4190),
                 inbound=Address("10.77.0.13", 4143))
    legacy = Pod(name="legacy-0", namespace="default", deployment="legacy",
                 address=Address("10.77.0.16", 80))
    inv = Inventory((voting, legacy))
    mesh = MeshTls(None, lambda: inv, own=("emojivoto", "web-0"))  # type: ignore[arg-type]
    want = "voting.emojivoto.serviceaccount.identity.meshtui.local"
    assert mesh.server_identity(("10.77.0.13", 8080)) == want
    assert mesh.server_identity(("10.77.0.13", 4143)) == want
    assert mesh.server_identity(("10.77.0.13", 4190)) is None
    assert mesh.server_identity(("10.77.0.16", 80)) is None  # not meshed: plain
    # Voting's own proxy reaches its app there: plain.
    own = MeshTls(None, lambda: inv, own=("emojivoto", "voting-0"))  # type: ignore[arg-type]
    assert own.server_identity(("10.77.0.13", 8080)) is None
    assert own.server_identity(("10.77.0.13", 4143)) == want


async def test_many_client_connections_reach_the_callee_over_one_tls_connection(
        tls_mesh: TlsMesh) -> None:
    """The caller's proxy carries each connection to a meshed peer as a stream of one
    link: twenty clients at once, one TLS connection, twenty connections at the callee
    (each with the caller's identity), and each client's bytes its own."""
    m = tls_mesh
    assert m.web.outbound_address is not None and m.web.ctx is not None
    clients = [await Client.connect(m.web.outbound_address) for _ in range(20)]
    try:
        rs = await asyncio.gather(*(c.request("POST", "/echo", {"host": m.app_addr},
                                              f"client {i}".encode())
                                    for i, c in enumerate(clients)))
        assert [r.body for r in rs] == [f"client {i}".encode() for i in range(20)]
    finally:
        for c in clients:
            await c.close()
    links = m.web.ctx.pool.links
    assert links is not None and links.opened == 1
    assert [len(v) for v in links.live.values()] == [1]
    opened = sum(float(x.rsplit(" ", 1)[1]) for x in m.metrics(m.emoji).splitlines()
                 if x.startswith("tcp_open_total{") and f'client_id="{WEB}"' in x)
    assert opened == 20


async def test_an_h2_client_with_a_meshed_identity_is_served_over_a_link(
        tls_mesh: TlsMesh) -> None:
    """A caller written with the h2 library, holding the web pod's certificate, opens
    CONNECT streams to the callee's proxy over TLS (ALPN meshtui-link/1) and speaks
    HTTP/1.1 inside: the callee's proxy serves and counts them as web's requests."""
    import h2.config
    import h2.connection
    import h2.events

    from meshtui.identity.certs import new_key
    from meshtui.identity.workload import Bundle, contexts

    m = tls_mesh
    key = new_key()
    issued = m.auth.issue(WEB, key.public_key())
    ctx = contexts(key, Bundle(issued.leaf, (issued.issuer,), issued.anchor)).link
    assert m.emoji.inbound_address is not None
    host, port = m.emoji.inbound_address
    r, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=EMOJI)
    assert w.get_extra_info("ssl_object").selected_alpn_protocol() == "meshtui-link/1"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sids = []
    for i in range(2):
        sid = conn.get_next_available_stream_id()
        sids.append(sid)
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", m.app_addr)])
        conn.send_data(sid, f"POST /echo HTTP/1.1\r\nhost: {m.app_addr}\r\n"
                            f"content-length: 6\r\n\r\nh2 #{i}\n".encode())
    w.write(conn.data_to_send())
    got = dict.fromkeys(sids, b"")
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while not all(g.endswith(b"\n") and b"\r\n\r\n" in g for g in got.values()):
        assert loop.time() < end, got
        data = await asyncio.wait_for(r.read(65536), 10)
        assert data, "the callee closed the link"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                got[ev.stream_id] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        w.write(conn.data_to_send())
    for i, sid in enumerate(sids):
        assert got[sid].startswith(b"HTTP/1.1 200") and got[sid].endswith(f"h2 #{i}\n".encode())
    w.close()
    text = m.metrics(m.emoji)
    line = next(x for x in text.splitlines()
                if x.startswith("response_total{") and f'client_id="{WEB}"' in x)
    assert 'classification="success"' in line and line.endswith(" 2.0"), line
