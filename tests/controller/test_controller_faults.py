"""Faulty proxies: killed, restarted from zero, hanging. The controller marks and
recovers the faulty one, stays fresh for the others, never reports a negative rate."""

from __future__ import annotations

import time

from ctlkit import EMOJI_W, Mesh, until
from fakeproxy import INBOUND

from meshtui.v1 import common_pb2, controller_pb2

POD = common_pb2.POD


async def pod_resources(m: Mesh) -> dict[str, controller_pb2.Resource]:
    resp = await m.mesh.ListResources(controller_pb2.ListResourcesRequest(
        selector=common_pb2.ResourceSelector(type=POD)))
    return {r.name: r for r in resp.resources}


async def emoji_summary(m: Mesh, window_s: int = 60) -> controller_pb2.StatRow:
    resp = await m.stats.Summary(controller_pb2.StatRequest(
        selector=common_pb2.ResourceSelector(type=common_pb2.DEPLOYMENT, namespace="emojivoto",
                                             name="emoji"), window_s=window_s))
    return resp.rows[0]


async def test_killed_proxy_is_unreachable_within_3s_and_others_stay_fresh(
    real_mesh: Mesh,
) -> None:
    m = real_mesh
    await m.fakes["emoji-0"].stop()
    killed = time.monotonic()
    while True:
        pods = await pod_resources(m)
        if not pods["emoji-0"].reachable:
            break
        assert time.monotonic() - killed < 3.0, "still reachable 3 s after the kill"
    took = time.monotonic() - killed
    assert took <= 3.0
    assert pods["emoji-0"].meshed_pods == 0 and pods["emoji-0"].proxied_pods == 1
    now_ms = time.time() * 1000
    for name in ("web-0", "web-1", "voting-0"):
        assert pods[name].reachable
        assert now_ms - pods[name].last_scrape_ms < 1600, f"{name} went stale"
    ns = await m.mesh.ListResources(controller_pb2.ListResourcesRequest(
        selector=common_pb2.ResourceSelector(type=common_pb2.NAMESPACE, name="emojivoto")))
    assert (ns.resources[0].meshed_pods, ns.resources[0].total_pods) == (3, 4)
    assert not ns.resources[0].reachable


async def test_restarted_proxy_counts_from_zero_without_negatives_or_doubles(mesh: Mesh) -> None:
    emoji = mesh.fakes["emoji-0"]
    emoji.record(INBOUND, EMOJI_W, 200, 1_000, 500)
    t = time.time()
    await until(lambda: mesh.scraped_after("emoji-0", t))
    assert (await emoji_summary(mesh)).stats.success_count == 500
    await emoji.stop()
    await until(lambda: not mesh.ctl.store.reachable(mesh.state("emoji-0")), 3.0)
    emoji.restart()  # counters from zero, new run id
    emoji.record(INBOUND, EMOJI_W, 200, 1_000, 20)
    await emoji.start(emoji.port)
    t = time.time()
    await until(lambda: mesh.scraped_after("emoji-0", t), 5.0)
    row = await emoji_summary(mesh)
    assert row.stats.success_count == 520  # 500 before, 20 after: none lost, none twice
    assert row.stats.window_s > 0
    assert row.resource.meshed_pods == 1
    # And it keeps counting on top, with rates never below zero.
    for _ in range(3):
        emoji.record(INBOUND, EMOJI_W, 200, 1_000, 10)
        t = time.time()
        await until(lambda t=t: mesh.scraped_after("emoji-0", t))
        row = await emoji_summary(mesh, window_s=10)
        assert row.stats.success_count >= 0
        assert row.stats.success_count / row.stats.window_s >= 0
    assert (await emoji_summary(mesh)).stats.success_count == 550


async def test_hanging_proxy_costs_its_deadline_and_never_the_others_freshness(
    real_mesh: Mesh,
) -> None:
    m = real_mesh
    hung = m.fakes["voting-0"]
    hung.hang_s = 30.0
    others = ("web-0", "web-1", "emoji-0")
    t0 = time.monotonic()
    last = {p: m.state(p).last_ok for p in others}
    gaps: list[float] = []
    while time.monotonic() - t0 < 3.5:
        for p in others:
            ok = m.state(p).last_ok
            if ok != last[p]:
                gaps.append(ok - last[p])  # type: ignore[operator]
                last[p] = ok
        await _sleep(0.05)
    assert gaps, "no scrape of the healthy proxies in 3.5 s"
    assert max(gaps) < 1.3, f"healthy proxies waited {max(gaps):.2f}s between scrapes"
    assert m.ctl.scraper.last_tick_s < 0.8 + 0.2  # the hanging scrape cost only its deadline
    assert not m.ctl.store.reachable(m.state("voting-0"))
    hung.hang_s = 0.0
    await until(lambda: m.ctl.store.reachable(m.state("voting-0")), 3.0)


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


async def test_every_proxy_is_scraped_once_per_interval_across_slices(mesh: Mesh) -> None:
    before = {p: f.scrapes for p, f in mesh.fakes.items()}
    await _sleep(2.0)  # eight intervals of 0.25 s
    for p, f in mesh.fakes.items():
        assert 6 <= f.scrapes - before[p] <= 10, (p, f.scrapes - before[p])
