"""The demo's apps over real sockets, without the mesh: they must work on their own."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from meshtui.demo import dns
from meshtui.demo.emojivoto import EMOJI, FAILING_CHOICE, start_emoji, start_voting, web_handler
from meshtui.demo.emojivoto_grpc import VOTE_METHODS, Backends, vote_method
from meshtui.demo.emojivoto_v1 import voting_pb2
from meshtui.demo.httpkit import Client, serve


async def _port(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


async def test_web_calls_emoji_and_voting_over_grpc_and_doughnut_fails() -> None:
    emoji, emoji_port = await start_emoji("127.0.0.1:0")
    voting, voting_port = await start_voting("127.0.0.1:0")
    backends = Backends(f"127.0.0.1:{emoji_port}", f"127.0.0.1:{voting_port}")
    client = Client()
    web = await serve(web_handler(backends), "127.0.0.1", 0)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{await _port(web)}"
    try:
        listing = await client.request("GET", f"{base}/api/list")
        assert listing.status == 200
        assert {e["shortcode"] for e in json.loads(listing.body)} == {c for c, _ in EMOJI}
        assert (await client.request("GET", f"{base}/api/vote?choice=:rocket:")).status == 200
        assert (await client.request("GET", f"{base}/api/vote?choice=:100:")).status == 200
        failing = await client.request("GET", f"{base}/api/vote?choice={FAILING_CHOICE}")
        assert failing.status == 500 and b"UNKNOWN" in failing.body
        # An emoji emoji does not know: NOT_FOUND from FindByShortcode, 404 from web.
        assert (await client.request("GET", f"{base}/api/vote?choice=:nope:")).status == 404
        board = json.loads((await client.request("GET", f"{base}/api/leaderboard")).body)
        assert sorted(board, key=lambda r: r["shortcode"]) == [
            {"shortcode": ":100:", "votes": 1}, {"shortcode": ":rocket:", "votes": 1}]
        # The services answer gRPC's own clients the same way.
        stub = await backends.voting()
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.VoteDoughnut(voting_pb2.VoteRequest())
        assert e.value.code() == grpc.StatusCode.UNKNOWN
        # keep-alive: many requests reuse the pooled connection
        for _ in range(20):
            assert (await client.request("GET", f"{base}/")).status == 200
    finally:
        await client.close()
        await backends.close()
        web.close()
        for s in (emoji, voting):
            await s.stop(None)


async def test_web_reports_502_when_a_backend_is_down() -> None:
    client = Client(timeout=2)
    backends = Backends("127.0.0.1:1", "127.0.0.1:1")
    web = await serve(web_handler(backends), "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        resp = await client.request("GET", f"http://127.0.0.1:{await _port(web)}/api/list")
        assert resp.status == 502
    finally:
        await client.close()
        await backends.close()
        web.close()


def test_every_emoji_has_its_vote_method() -> None:
    assert vote_method(":stuck_out_tongue:") == "VoteStuckOutTongue"
    assert {vote_method(c) for c, _ in EMOJI} <= VOTE_METHODS


async def test_kube_dns_answers_over_udp_and_tcp() -> None:
    records = {"emoji-svc.emojivoto.svc.cluster.local": "10.1.2.3",
               "emoji-svc.emojivoto": "10.1.2.3"}
    tcp, udp = await dns.serve_dns(records, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    # UDP on an ephemeral port of its own: ask the transport where it landed.
    uport = udp.get_extra_info("sockname")[1]
    try:
        assert await dns.query_udp(("127.0.0.1", uport), "emoji-svc.emojivoto") == (0, ["10.1.2.3"])
        answers = await dns.query_tcp(("127.0.0.1", port),
                                      ["emoji-svc.emojivoto.svc.cluster.local", "nope.example"])
        assert answers == [(0, ["10.1.2.3"]), (dns.RCODE_NXDOMAIN, [])]
    finally:
        tcp.close()
        udp.close()


def test_dns_rejects_malformed_messages() -> None:
    with pytest.raises(dns.DnsError):
        dns.answer(b"\x00\x01", {})
    loop = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"
    with pytest.raises(dns.DnsError):
        dns.answer(loop, {})


async def test_kube_dns_shares_its_port_with_the_health_endpoint() -> None:
    from meshtui.demo.emojivoto import kube_dns_health_handler
    from meshtui.demo.httpkit import connection_handler

    tcp, udp = await dns.serve_dns({"a.b": "10.0.0.9"}, "127.0.0.1", 0,
                                   http=connection_handler(kube_dns_health_handler()))  # type: ignore[arg-type]
    port = tcp.sockets[0].getsockname()[1]
    client = Client()
    try:
        health = await client.request("GET", f"http://127.0.0.1:{port}/health")
        assert health.status == 200
        assert await dns.query_tcp(("127.0.0.1", port), ["a.b"]) == [(0, ["10.0.0.9"])]
    finally:
        await client.close()
        tcp.close()
        udp.close()
