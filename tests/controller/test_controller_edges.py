"""Edges through the controller's gRPC API: who called whom, as the sources' proxies counted."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
import pytest
from ctlkit import Mesh, until
from fakeproxy import INBOUND, OUTBOUND

from meshtui.v1 import common_pb2, controller_pb2

NS, DEPLOY, POD = common_pb2.NAMESPACE, common_pb2.DEPLOYMENT, common_pb2.POD
EMOJI = ("emojivoto", "emoji", "emoji-0")
VOTING = ("emojivoto", "voting", "voting-0")


def sel(t: int, ns: str = "") -> common_pb2.ResourceSelector:
    return common_pb2.ResourceSelector(type=t, namespace=ns)


def pairs(resp: controller_pb2.EdgesResponse) -> dict[tuple[str, str], controller_pb2.Edge]:
    return {(e.src.name, e.dst.name): e for e in resp.edges}


async def test_edges_pair_each_source_with_the_destinations_it_called(mesh: Mesh) -> None:
    web0, web1 = mesh.fakes["web-0"], mesh.fakes["web-1"]
    web0.record(OUTBOUND, EMOJI, 200, 5_000, 90, tls=True)
    web0.record(OUTBOUND, EMOJI, 500, 5_000, 10, tls=True)
    # Known to web-1 only by address: the inventory names it.
    web1.record(OUTBOUND, ("", "", ""), 200, 7_000, 30, dst_addr="127.0.0.1:18083")
    mesh.fakes["voting-0"].record(INBOUND, VOTING, 200, 1_000, 30)  # served, not an edge
    # Not a deployment the inventory or the proxy can name: left out.
    web1.record(OUTBOUND, ("", "", ""), 200, 7_000, 5, dst_addr="10.9.9.9:80")
    t = time.time()
    await until(lambda: all(mesh.scraped_after(p, t) for p in mesh.fakes))

    resp = await mesh.stats.Edges(controller_pb2.EdgesRequest(
        selector=sel(DEPLOY, "emojivoto"), window_s=60))
    by = pairs(resp)
    assert sorted(by) == [("web", "emoji"), ("web", "voting")]
    to_emoji, to_voting = by["web", "emoji"], by["web", "voting"]
    assert (to_emoji.stats.success_count, to_emoji.stats.failure_count) == (90, 10)
    assert to_emoji.src.namespace == to_emoji.dst.namespace == "emojivoto"
    assert to_emoji.stats.latency_ms_p99 == pytest.approx(5.0, rel=0.05)
    assert to_voting.stats.success_count == 30
    # SECURED is what the proxies said of the traffic.
    assert to_emoji.tls and not to_voting.tls

    pods = pairs(await mesh.stats.Edges(controller_pb2.EdgesRequest(
        selector=sel(POD, "emojivoto"))))
    assert sorted(pods) == [("web-0", "emoji-0"), ("web-1", "voting-0")]


async def _edge(mesh: Mesh, window_s: int, end_ms: int = 0) -> tuple[bool, int]:
    """web-0 → emoji-0 over a window: (SECURED, responses)."""
    resp = await mesh.stats.Edges(controller_pb2.EdgesRequest(
        selector=sel(POD, "emojivoto"), window_s=window_s, end_ms=end_ms))
    e = pairs(resp)["web-0", "emoji-0"]
    return e.tls, e.stats.success_count + e.stats.failure_count


async def test_secured_is_judged_over_the_window_not_the_proxys_life(mesh: Mesh) -> None:
    """One plain call (before certificates were issued), then only mutual TLS: the edge
    is SECURED over a window the plain call is out of, and not over one it is in."""
    web0 = mesh.fakes["web-0"]
    web0.record(OUTBOUND, EMOJI, 200, 5_000, 1)
    await mesh.settle()
    await asyncio.sleep(1.0)
    web0.record(OUTBOUND, EMOJI, 200, 5_000, 20, tls=True)
    await mesh.settle()
    assert await _edge(mesh, 60) == (False, 21)
    # The last second up to the scrape that carried the mutual-TLS calls (a window
    # ending then, so that a slow machine cannot move it).
    last = mesh.state("web-0").windows.last_time  # type: ignore[union-attr]
    assert last is not None
    assert await _edge(mesh, 1, end_ms=int(last * 1000) + 1) == (True, 20)
    # Plain again: a window holding only that is not secured.
    await asyncio.sleep(1.0)
    web0.record(OUTBOUND, EMOJI, 500, 5_000, 1)
    await mesh.settle()
    last = mesh.state("web-0").windows.last_time  # type: ignore[union-attr]
    assert last is not None
    assert await _edge(mesh, 1, end_ms=int(last * 1000) + 1) == (False, 1)


async def test_plain_calls_before_a_proxy_restart_still_count_in_the_window(
        mesh: Mesh) -> None:
    web0 = mesh.fakes["web-0"]
    web0.record(OUTBOUND, EMOJI, 200, 5_000, 3)
    await mesh.settle()
    web0.restart()
    web0.record(OUTBOUND, EMOJI, 200, 5_000, 10, tls=True)
    await mesh.settle()
    assert await _edge(mesh, 60) == (False, 13)


async def test_edges_of_a_quiet_namespace_are_none_and_unknown_ones_refused(mesh: Mesh) -> None:
    t = time.time()
    await until(lambda: all(mesh.scraped_after(p, t) for p in mesh.fakes))
    resp = await mesh.stats.Edges(controller_pb2.EdgesRequest(selector=sel(DEPLOY, "emojivoto")))
    assert list(resp.edges) == []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await mesh.stats.Edges(controller_pb2.EdgesRequest(selector=sel(DEPLOY, "nowhere")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nowhere" in (e.value.details() or "")


async def _cli(mesh: Mesh, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshtui", "--server", f"127.0.0.1:{mesh.ctl.port}", "edges",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_edges_command_prints_linkerds_columns_and_the_figures(mesh: Mesh) -> None:
    mesh.fakes["web-0"].record(OUTBOUND, EMOJI, 200, 5_000, 90, tls=True)
    mesh.fakes["web-0"].record(OUTBOUND, EMOJI, 500, 5_000, 10, tls=True)
    mesh.fakes["web-1"].record(OUTBOUND, VOTING, 200, 1_000, 40)
    await mesh.settle()

    code, out, err = await _cli(mesh, "deploy", "-n", "emojivoto")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["SRC", "DST", "SRC_NS", "DST_NS", "SECURED", "SUCCESS", "RPS",
                                "LATENCY_P99"]
    assert lines[1].split()[:6] == ["web", "emoji", "emojivoto", "emojivoto", "√", "90.00%"]
    assert lines[2].split()[:5] == ["web", "voting", "emojivoto", "emojivoto", "100.00%"]

    code, out, _ = await _cli(mesh, "po", "-A", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert [(e["src"], e["dst"], e["secured"]) for e in doc] == [
        ("web-0", "emoji-0", True), ("web-1", "voting-0", False)]
    assert doc[0]["success"] == pytest.approx(0.9) and doc[0]["rps"] > 0

    code, out, _ = await _cli(mesh, "deploy", "-n", "emojivoto", "-o", "wide")
    assert "LATENCY_P50" in out.splitlines()[0]

    code, out, err = await _cli(mesh, "deploy/web", "-n", "emojivoto")
    assert (code, out) == (2, "") and len(err.splitlines()) == 1 and "not a name" in err
    code, out, err = await _cli(mesh, "deploy", "-n", "nowhere")
    assert code == 2 and "nowhere" in err and "Traceback" not in err
