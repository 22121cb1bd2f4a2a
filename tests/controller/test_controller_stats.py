"""Stat summaries through the controller's gRPC API match what the proxies counted."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import grpc
import pytest
from ctlkit import Mesh, until
from fakeproxy import INBOUND, OUTBOUND

from meshtui.model.histogram import Histogram
from meshtui.v1 import common_pb2, controller_pb2

NS, DEPLOY, POD = common_pb2.NAMESPACE, common_pb2.DEPLOYMENT, common_pb2.POD
EMOJI = ("emojivoto", "emoji", "emoji-0")
VOTING = ("emojivoto", "voting", "voting-0")


def sel(t: int, ns: str = "", name: str = "") -> common_pb2.ResourceSelector:
    return common_pb2.ResourceSelector(type=t, namespace=ns, name=name)


def rows(resp: controller_pb2.StatResponse) -> dict[str, controller_pb2.StatRow]:
    return {r.resource.name: r for r in resp.rows}


async def record_traffic(m: Mesh) -> float:
    """Traffic as the proxies would count it; returns when it was recorded."""
    emoji, voting = m.fakes["emoji-0"], m.fakes["voting-0"]
    emoji.record(INBOUND, EMOJI, 200, 2_000, 90)
    emoji.record(INBOUND, EMOJI, 500, 40_000, 10)
    voting.record(INBOUND, VOTING, 200, 1_000, 50)
    voting.record(INBOUND, VOTING, 500, 3_000, 50)
    voting.record_tcp(INBOUND, VOTING, opened=4, closed=1, read=8000, write=16000)
    # web-0 knows its peer by name; web-1 knows only the address it dialled.
    m.fakes["web-0"].record(OUTBOUND, EMOJI, 200, 5_000, 100)
    m.fakes["web-1"].record(OUTBOUND, ("", "", ""), 200, 7_000, 30,
                            dst_addr="127.0.0.1:18083")
    t = time.time()
    await until(lambda: all(m.scraped_after(p, t) for p in m.fakes))
    return t


async def test_summary_matches_what_the_proxies_counted(mesh: Mesh) -> None:
    t0 = time.time()
    await record_traffic(mesh)
    resp = await mesh.stats.Summary(controller_pb2.StatRequest(selector=sel(DEPLOY, "emojivoto"),
                                                               window_s=60))
    by = rows(resp)
    assert sorted(by) == ["emoji", "voting", "web"]
    emoji = by["emoji"]
    assert emoji.has_traffic
    assert (emoji.stats.success_count, emoji.stats.failure_count) == (90, 10)
    # Every count lies within the span the controller has watched.
    assert 0 < emoji.stats.window_s <= time.time() - t0 + 1.0
    expected = Histogram()
    expected.record(2_000, 90)
    expected.record(40_000, 10)
    p50, p95, p99 = (v / 1000 for v in expected.quantiles([0.5, 0.95, 0.99]))  # type: ignore
    assert emoji.stats.latency_ms_p50 == pytest.approx(p50)
    assert emoji.stats.latency_ms_p95 == pytest.approx(p95)
    assert emoji.stats.latency_ms_p99 == pytest.approx(p99)
    assert p50 == pytest.approx(2.0, rel=0.01) and p99 == pytest.approx(40.0, rel=0.01)
    assert emoji.resource.meshed_pods == emoji.resource.total_pods == 1

    voting = by["voting"]
    assert voting.stats.success_count == voting.stats.failure_count == 50
    assert voting.tcp.open_connections == 3
    assert voting.tcp.read_bytes_rate == pytest.approx(8000 / voting.stats.window_s, rel=0.05)
    web = by["web"]
    assert not web.has_traffic  # web served nothing: its calls are outbound
    assert (web.resource.meshed_pods, web.resource.total_pods) == (2, 2)
    assert resp.proxies_total == resp.proxies_reachable == 4


async def test_merged_percentiles_come_from_histograms_not_averages(mesh: Mesh) -> None:
    await record_traffic(mesh)
    resp = await mesh.stats.Summary(controller_pb2.StatRequest(selector=sel(NS, name="emojivoto")))
    ns = rows(resp)["emojivoto"]
    assert (ns.stats.success_count, ns.stats.failure_count) == (140, 60)
    merged = Histogram()
    for v, n in ((2_000, 90), (40_000, 10), (1_000, 50), (3_000, 50)):
        merged.record(v, n)
    assert ns.stats.latency_ms_p99 == pytest.approx(merged.quantile(0.99) / 1000)  # type: ignore
    assert ns.stats.latency_ms_p50 == pytest.approx(merged.quantile(0.5) / 1000)  # type: ignore
    wire = Histogram.from_sparse(ns.stats.latency.indexes, ns.stats.latency.counts)
    assert wire == merged


async def test_to_and_from_narrow_by_the_other_side(mesh: Mesh) -> None:
    await record_traffic(mesh)
    # --to: web's outbound calls whose destination is voting (named from the address).
    resp = await mesh.stats.Summary(controller_pb2.StatRequest(
        selector=sel(DEPLOY, "emojivoto", "web"), to=sel(DEPLOY, "emojivoto", "voting")))
    (web,) = resp.rows
    assert web.stats.success_count == 30
    assert web.stats.latency_ms_p50 == pytest.approx(7.0, rel=0.01)
    # --from: per destination, what web's pods sent it.
    resp = await mesh.stats.Summary(controller_pb2.StatRequest(
        selector=sel(DEPLOY, "emojivoto"), **{"from": sel(DEPLOY, "emojivoto", "web")}))
    by = rows(resp)
    assert by["emoji"].stats.success_count == 100
    assert by["voting"].stats.success_count == 30
    assert not by["web"].has_traffic
    # Pods: --to on a pod target.
    resp = await mesh.stats.Summary(controller_pb2.StatRequest(
        selector=sel(POD, "emojivoto"), to=sel(POD, "emojivoto", "emoji-0")))
    by = rows(resp)
    assert by["web-0"].stats.success_count == 100
    assert not by["web-1"].has_traffic


async def test_namespaces_count_meshed_pods_and_unmeshed_ones(mesh: Mesh) -> None:
    resp = await mesh.mesh.ListResources(controller_pb2.ListResourcesRequest(selector=sel(NS)))
    by = {r.name: r for r in resp.resources}
    assert (by["emojivoto"].meshed_pods, by["emojivoto"].total_pods) == (4, 4)
    assert (by["default"].meshed_pods, by["default"].total_pods) == (0, 1)
    assert by["default"].proxied_pods == 0
    pods = await mesh.mesh.ListResources(controller_pb2.ListResourcesRequest(selector=sel(POD)))
    names = {r.name: r for r in pods.resources}
    assert names["web-0"].reachable and names["web-0"].deployment == "web"
    assert names["web-0"].address == "127.0.0.1:18080"
    assert not names["lonely-0"].reachable
    every = await mesh.mesh.ListResources(controller_pb2.ListResourcesRequest())
    assert {r.type for r in every.resources} == {NS, DEPLOY, POD}


@pytest.mark.parametrize(
    ("req", "words"),
    [
        (controller_pb2.StatRequest(selector=sel(DEPLOY, "emojivoto", "nope")), "deployment/nope"),
        (controller_pb2.StatRequest(selector=sel(DEPLOY, "nowhere")), "namespace nowhere"),
        (controller_pb2.StatRequest(), "resource type"),
        (controller_pb2.StatRequest(selector=sel(POD), to=sel(POD, "", "ghost")), "pod/ghost"),
        (controller_pb2.StatRequest(selector=sel(POD), window_s=3600), "3600s"),
    ],
)
async def test_unknown_resources_are_invalid_arguments(
    mesh: Mesh, req: controller_pb2.StatRequest, words: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh.stats.Summary(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (info.value.details() or "")


async def test_watch_sends_the_summary_again_every_interval(mesh: Mesh) -> None:
    call = mesh.stats.Watch(controller_pb2.WatchStatRequest(
        request=controller_pb2.StatRequest(selector=sel(DEPLOY, "emojivoto")), interval_ms=200))
    seen = []
    t0 = time.monotonic()
    async for resp in call:
        seen.append(resp)
        if len(seen) == 4:
            break
    call.cancel()
    assert 0.5 <= time.monotonic() - t0 < 2.0
    assert all(len(r.rows) == 3 for r in seen)


async def test_history_fills_per_step_points(mesh: Mesh) -> None:
    for _ in range(6):
        mesh.fakes["emoji-0"].record(INBOUND, EMOJI, 200, 2_000, 20)
        t = time.time()
        await until(lambda t=t: mesh.scraped_after("emoji-0", t))
    resp = await mesh.stats.History(controller_pb2.HistoryRequest(
        selector=sel(DEPLOY, "emojivoto", "emoji"), window_s=60, step_s=1))
    (series,) = resp.series
    assert series.resource.name == "emoji"
    pts = series.points
    assert len(pts) >= 2
    assert sum(p.rps > 0 for p in pts) >= 2
    assert all(p.rps >= 0 for p in pts)
    assert [p.timestamp_ms for p in pts] == sorted(p.timestamp_ms for p in pts)
    busy = [p for p in pts if p.rps > 0]
    assert all(p.success == 1.0 for p in busy)
    assert all(p.latency_ms_p50 == pytest.approx(2.0, rel=0.01) for p in busy)
    assert all(math.isnan(p.success) for p in pts if p.rps == 0)


async def test_inventory_changes_are_picked_up_and_bad_files_ignored(mesh: Mesh) -> None:
    from ctlkit import PODS, write_inventory

    more = dict(PODS)
    more["extra-0"] = ("other", "extra", "127.0.0.1:18090", False)
    write_inventory(mesh.inventory, mesh.fakes, more)

    async def pods() -> set[str]:
        resp = await mesh.mesh.ListResources(controller_pb2.ListResourcesRequest(
            selector=sel(POD)))
        return {r.name for r in resp.resources}

    t0 = time.monotonic()
    while "extra-0" not in await pods():
        assert time.monotonic() - t0 < 3.0
    mesh.inventory.write_text("pods: [ {name: broken")  # half-written
    await until(lambda: mesh.ctl.watcher._bad_sig is not None, 3.0)
    assert "extra-0" in await pods()
    less = {k: v for k, v in PODS.items() if k != "lonely-0"}
    write_inventory(mesh.inventory, mesh.fakes, less)
    t0 = time.monotonic()
    while "lonely-0" in await pods():
        assert time.monotonic() - t0 < 3.0


async def test_a_bad_inventory_is_logged_once_and_the_old_one_kept(
    mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshtui.controller")
    mesh.inventory.write_text("pods: [ {name: broken")
    await until(lambda: mesh.ctl.watcher._bad_sig is not None, 3.0)
    await asyncio.sleep(0.5)  # several more polls of the same bad file
    lines = [r.getMessage() for r in caplog.records if "inventory" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "keeping the previous 5 pods" in lines[0]
    assert len(mesh.ctl.store.pods) == 5


async def test_a_window_that_ended_earlier_holds_what_was_counted_then(mesh: Mesh) -> None:
    before = time.time()
    await asyncio.sleep(2.5)  # a few scrapes of nothing first
    await record_traffic(mesh)
    req = controller_pb2.StatRequest(selector=sel(DEPLOY, "emojivoto"), window_s=10)
    now = rows(await mesh.stats.Summary(req))["emoji"].stats
    req.end_ms = int(before * 1000)
    then = rows(await mesh.stats.Summary(req))["emoji"].stats
    assert (now.success_count, now.failure_count) == (90, 10)
    assert (then.success_count, then.failure_count) == (0, 0)
    req.end_ms = int((time.time() - 16 * 60) * 1000)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mesh.stats.Summary(req)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "--prometheus" in (err.value.details() or "")


async def test_a_dead_proxys_figures_leave_the_row_and_its_pod_is_named(mesh: Mesh) -> None:
    await record_traffic(mesh)
    req = controller_pb2.StatRequest(selector=sel(DEPLOY, "emojivoto"), window_s=60)
    before = rows(await mesh.stats.Summary(req))
    assert before["voting"].has_traffic and not before["voting"].resource.missing_pods
    await mesh.fakes["voting-0"].stop()
    await until(lambda: not mesh.ctl.store.reachable(mesh.state("voting-0")), timeout=5)
    after = rows(await mesh.stats.Summary(req))
    # Its counts are within the window still, but nothing vouches for them now.
    assert not after["voting"].has_traffic
    assert list(after["voting"].resource.missing_pods) == ["voting-0"]
    assert after["emoji"].has_traffic and not after["emoji"].resource.missing_pods
    ns = rows(await mesh.stats.Summary(controller_pb2.StatRequest(selector=sel(NS),
                                                                  window_s=60)))
    assert list(ns["emojivoto"].resource.missing_pods) == ["voting-0"]
