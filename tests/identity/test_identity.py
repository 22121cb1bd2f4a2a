"""The identity service end to end: a real controller signs, real TLS handshakes check."""

from __future__ import annotations

import asyncio
import json
import ssl
import stat
import time
from pathlib import Path

import pytest

from meshtui.controller.server import Controller
from meshtui.identity import identity_name
from meshtui.identity.authority import Authority
from meshtui.identity.names import peer_identity
from meshtui.identity.workload import IdentityError, WorkloadIdentity, grpc_asker

PODS = [
    {"name": "web-0", "namespace": "emojivoto", "deployment": "web",
     "address": "127.0.0.1:18080", "proxy": "127.0.0.1:14190"},
    {"name": "emoji-0", "namespace": "emojivoto", "deployment": "emoji",
     "serviceaccount": "emoji-sa", "address": "127.0.0.1:18082", "proxy": "127.0.0.1:14192"},
    {"name": "lonely-0", "namespace": "default", "deployment": "lonely",
     "address": "127.0.0.1:18084"},
]
WEB = identity_name("web", "emojivoto")
EMOJI = identity_name("emoji-sa", "emojivoto")


@pytest.fixture
async def ctl(tmp_path: Path):
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"pods": PODS}))
    auth = Authority.in_state_dir(tmp_path / "state", leaf_lifetime_s=3.0)
    c = Controller(inv, "127.0.0.1:0", identity=auth)
    await c.start()
    yield c, auth
    await c.stop(None)


def workload(c: Controller, auth: Authority, pod: str, name: str,
             token: str | None = None) -> WorkloadIdentity:
    ns = next(p["namespace"] for p in PODS if p["name"] == pod)
    tok = auth.pod_token(ns, pod) if token is None else token
    return WorkloadIdentity(name, grpc_asker(f"127.0.0.1:{c.identity_port}", ns, pod, tok))


def test_state_dir_files_are_private_and_reused(tmp_path: Path) -> None:
    a = Authority.in_state_dir(tmp_path)
    files = sorted((tmp_path / "identity").iterdir())
    assert len(files) == 5
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    b = Authority.in_state_dir(tmp_path)
    assert a.anchor == b.anchor and a.issuer == b.issuer
    at = time.time()
    assert a.pod_token("ns", "p", now=at) == b.pod_token("ns", "p", now=at) \
        != a.pod_token("ns", "q", now=at)


async def test_csr_for_another_pod_and_wrong_token_are_refused(ctl) -> None:
    c, auth = ctl
    with pytest.raises(IdentityError, match="may only ask for"):
        await workload(c, auth, "web-0", EMOJI).refresh()
    with pytest.raises(IdentityError, match="bad token"):
        await workload(c, auth, "web-0", WEB, token=auth.pod_token("emojivoto", "emoji-0")
                       ).refresh()
    # An unmeshed pod has no identity to hand out.
    with pytest.raises(IdentityError, match="no pod"):
        await workload(c, auth, "lonely-0", identity_name("lonely", "default")).refresh()
    assert c.identity is not None and c.identity.refused == 3 and c.identity.issued == 0


async def echo_server(ident: WorkloadIdentity, seen: list[str]):
    """A plain listener that upgrades each connection with the context current then."""
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        assert ident.server_ctx is not None
        try:
            await w.start_tls(ident.server_ctx)
        except (ssl.SSLError, ConnectionError):
            w.close()
            return
        seen.append(peer_identity(w.get_extra_info("ssl_object")))
        while data := await r.read(1024):
            w.write(data)
            await w.drain()
        w.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def dial(port: int, ident: WorkloadIdentity, expect: str):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ident.client_ctx,
                                         server_hostname=expect)
    return r, w, peer_identity(w.get_extra_info("ssl_object"))


async def test_mutual_tls_and_renewal_without_dropping_a_connection(ctl) -> None:
    c, auth = ctl
    web, emoji = workload(c, auth, "web-0", WEB), workload(c, auth, "emoji-0", EMOJI)
    first = await web.start()
    await emoji.start()
    assert first.name == WEB
    seen: list[str] = []
    srv = await echo_server(emoji, seen)
    port = srv.sockets[0].getsockname()[1]
    try:
        r, w, server_id = await dial(port, web, EMOJI)
        assert server_id == EMOJI
        # Keep talking over one connection while both sides renew (3 s life: at ~2.1 s).
        deadline = asyncio.get_running_loop().time() + 4.0
        n = 0
        while asyncio.get_running_loop().time() < deadline:
            w.write(b"ping %d\n" % n)
            assert await r.readline() == b"ping %d\n" % n
            n += 1
            await asyncio.sleep(0.01)
        assert web.renewals >= 1 and emoji.renewals >= 1
        assert web.bundle is not None and web.bundle.leaf.serial_number != first.leaf.serial_number
        # New connections present the renewed certificates.
        r2, w2, _ = await dial(port, web, EMOJI)
        w2.write(b"again\n")
        assert await r2.readline() == b"again\n"
        assert seen == [WEB, WEB]
        for x in (w, w2):
            x.close()
    finally:
        srv.close()
        await web.stop()
        await emoji.stop()


async def test_foreign_anchor_is_refused_at_handshake(ctl, tmp_path: Path) -> None:
    c, auth = ctl
    emoji = workload(c, auth, "emoji-0", EMOJI)
    await emoji.start()
    # Another controller's mesh: its own anchor, same names.
    other_auth = Authority.in_state_dir(tmp_path / "other")
    inv = tmp_path / "inventory.json"
    other = Controller(inv, "127.0.0.1:0", identity=other_auth)
    await other.start()
    seen: list[str] = []
    srv = await echo_server(emoji, seen)
    try:
        intruder = workload(other, other_auth, "web-0", WEB)
        await intruder.refresh()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            r, _w, _ = await dial(srv.sockets[0].getsockname()[1], intruder, EMOJI)
            await r.read(1)
        assert seen == []
    finally:
        srv.close()
        await emoji.stop()
        await other.stop(None)


async def test_check_reports_the_identity(ctl, capsys) -> None:
    from meshtui.checks import identity_results, run_checks

    c, auth = ctl
    # The proxies' certificates count only as the proxies report them: these pods'
    # proxies never answer, so a certificate issued does not make them healthy.
    await workload(c, auth, "web-0", WEB).refresh()
    assert await run_checks(f"127.0.0.1:{c.port}") == 1
    out = capsys.readouterr().out
    assert "√ trust anchor is valid for at least 60 days" in out
    assert "√ issuer certificate is valid for at least 60 days" in out
    assert "× every meshed proxy holds a current certificate for its identity" in out
    assert "    emojivoto/web-0: not scraped yet since the controller started" in out
    # Near expiry: 30 days before the issuer's end.
    later = auth.issuer.not_valid_after_utc.timestamp() - 30 * 86400
    results = identity_results(await _status(c), 0, later)
    assert [r.ok for r in results[:2]] == [False, False]


async def _status(c: Controller):  # type: ignore[no-untyped-def]
    from meshtui.client.controller import ControllerClient

    async with ControllerClient(f"127.0.0.1:{c.port}") as client:
        return await client.identity_status()


def _answers(auth: Authority, name: str, issuer_of: Authority | None = None):  # type: ignore[no-untyped-def]
    """An ``ask`` answering as ``auth`` would (its anchor), the leaf signed by
    ``issuer_of``'s issuer when given (a chain that does not hold)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from meshtui.v1 import identity_pb2

    async def ask(csr_der: bytes, _anchor: object) -> identity_pb2.CertifyResponse:
        csr = x509.load_der_x509_csr(csr_der)
        got = (issuer_of or auth).issue(name, csr.public_key())  # type: ignore[arg-type]
        return identity_pb2.CertifyResponse(
            leaf_der=got.leaf.public_bytes(Encoding.DER),
            intermediates_der=[got.issuer.public_bytes(Encoding.DER)],
            trust_anchor_der=auth.anchor.public_bytes(Encoding.DER))
    return ask


async def test_a_proxy_trusts_only_the_anchor_it_was_given_or_first_saw(tmp_path: Path) -> None:
    """Certify travels in plain: someone on the path could answer with an anchor of
    their own. Given the anchor out of band, a proxy refuses any other; without it, it
    keeps the first answer's and refuses a change at renewal; a leaf that does not
    chain to the anchor it came with is refused too."""
    mesh = Authority.in_state_dir(tmp_path / "mesh")
    rogue = Authority.in_state_dir(tmp_path / "rogue")
    with pytest.raises(IdentityError, match="another trust anchor"):
        await WorkloadIdentity(WEB, _answers(rogue, WEB), mesh.anchor).start()
    pinned = WorkloadIdentity(WEB, _answers(mesh, WEB), mesh.anchor)
    assert (await pinned.start()).anchor == mesh.anchor
    await pinned.stop()
    first = WorkloadIdentity(WEB, _answers(mesh, WEB))
    await first.start()
    await first.stop()
    first._ask = _answers(rogue, WEB)
    with pytest.raises(IdentityError, match="another trust anchor"):
        await first.refresh()
    with pytest.raises(IdentityError, match="does not chain"):
        await WorkloadIdentity(WEB, _answers(mesh, WEB, issuer_of=rogue)).start()


async def test_the_token_goes_only_to_an_endpoint_chaining_to_the_anchor(
        ctl, tmp_path: Path) -> None:
    """A proxy sends its token only over TLS to the controller's identity under the
    anchor it holds (given, or pinned at first use): another mesh's controller at the
    address it asks never sees the token."""
    c, auth = ctl
    rogue_auth = Authority.in_state_dir(tmp_path / "rogue")
    rogue = Controller(tmp_path / "inventory.json", "127.0.0.1:0", identity=rogue_auth)
    await rogue.start()
    try:
        token = auth.pod_token("emojivoto", "web-0")
        given = WorkloadIdentity(WEB, grpc_asker(
            f"127.0.0.1:{rogue.identity_port}", "emojivoto", "web-0", token), auth.anchor)
        with pytest.raises(IdentityError, match="does not present the controller's identity"):
            await given.refresh()
        # Pinned at first use, from the real controller; a renewal sent elsewhere is
        # refused alike.
        pinned = workload(c, auth, "web-0", WEB)
        await pinned.refresh()
        assert pinned.anchor == auth.anchor
        pinned._ask = grpc_asker(f"127.0.0.1:{rogue.identity_port}", "emojivoto", "web-0",
                                 token)
        with pytest.raises(IdentityError, match="does not present the controller's identity"):
            await pinned.refresh()
        assert rogue.identity is not None
        assert rogue.identity.issued == rogue.identity.refused == 0  # no Certify reached it
    finally:
        await rogue.stop(None)


async def test_certify_in_plain_is_refused_before_the_token_is_looked_at(ctl) -> None:
    import grpc

    from meshtui.identity import certs
    from meshtui.v1 import identity_pb2, identity_pb2_grpc

    c, auth = ctl
    csr = certs.make_csr(certs.new_key(), WEB)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{c.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await identity_pb2_grpc.IdentityStub(ch).Certify(identity_pb2.CertifyRequest(
                namespace="emojivoto", pod="web-0", csr_der=csr,
                token=auth.pod_token("emojivoto", "web-0")), timeout=2)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "TLS" in (e.value.details() or "")
    assert c.identity is not None and c.identity.issued == 0


async def test_an_expired_or_altered_token_is_refused(ctl) -> None:
    """A token taken from a pod (its file, a log) is good until the end it carries; its
    end cannot be moved without the controller's secret."""
    from meshtui.identity.names import TOKEN_LIFETIME_S

    c, auth = ctl
    old = auth.pod_token("emojivoto", "web-0", now=time.time() - TOKEN_LIFETIME_S - 1)
    with pytest.raises(IdentityError, match="expired at"):
        await workload(c, auth, "web-0", WEB, token=old).refresh()
    end, _, mac = old.partition(".")
    moved = f"{int(end) + 2 * int(TOKEN_LIFETIME_S)}.{mac}"
    with pytest.raises(IdentityError, match="bad token"):
        await workload(c, auth, "web-0", WEB, token=moved).refresh()
    with pytest.raises(IdentityError, match="bad token"):  # the permanent kind of before
        await workload(c, auth, "web-0", WEB, token=mac).refresh()
    assert (await workload(c, auth, "web-0", WEB).refresh()).name == WEB
    assert c.identity is not None and c.identity.refused == 3 and c.identity.issued == 1


async def test_the_identity_port_renews_its_own_certificate(ctl) -> None:
    """Its certificate lives as long as a proxy's (3 s here): past that, new
    connections get a renewed one, and proxies holding the anchor still get theirs."""
    c, auth = ctl
    from meshtui.identity.workload import presented_anchor

    first = workload(c, auth, "web-0", WEB)
    await first.refresh()
    await asyncio.sleep(3.5)  # the port's first certificate has expired
    assert await presented_anchor(f"127.0.0.1:{c.identity_port}") == auth.anchor
    given = WorkloadIdentity(WEB, grpc_asker(f"127.0.0.1:{c.identity_port}", "emojivoto",
                                             "web-0", auth.pod_token("emojivoto", "web-0")),
                             auth.anchor)
    assert (await given.refresh()).name == WEB
    await first.refresh()
