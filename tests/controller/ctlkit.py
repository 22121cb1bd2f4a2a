"""A small mesh of fake proxies behind a real controller, all on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from fakeproxy import FakeProxy

from meshtui.controller.server import Controller
from meshtui.controller.store import PodState
from meshtui.v1 import controller_pb2_grpc

# name → (namespace, deployment, app address, meshed)
PODS = {
    "web-0": ("emojivoto", "web", "127.0.0.1:18080", True),
    "web-1": ("emojivoto", "web", "127.0.0.1:18081", True),
    "emoji-0": ("emojivoto", "emoji", "127.0.0.1:18082", True),
    "voting-0": ("emojivoto", "voting", "127.0.0.1:18083", True),
    "lonely-0": ("default", "lonely", "127.0.0.1:18084", False),
}
EMOJI_W = ("emojivoto", "emoji", "emoji-0")


async def until(cond: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> float:
    """Waits for ``cond``; returns the seconds it took. Fails the test on timeout."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
    return time.monotonic() - t0


def write_inventory(path: Path, fakes: dict[str, FakeProxy], pods: dict = PODS) -> None:
    doc = {"pods": [
        {"name": name, "namespace": ns, "deployment": dep, "address": addr,
         **({"proxy": fakes[name].addr} if meshed and name in fakes else {})}
        for name, (ns, dep, addr, meshed) in pods.items()
    ]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


@dataclass
class Mesh:
    ctl: Controller
    fakes: dict[str, FakeProxy]
    inventory: Path
    channel: grpc.aio.Channel

    @property
    def stats(self) -> controller_pb2_grpc.StatsStub:
        return controller_pb2_grpc.StatsStub(self.channel)

    @property
    def mesh(self) -> controller_pb2_grpc.MeshStub:
        return controller_pb2_grpc.MeshStub(self.channel)

    @property
    def tap(self) -> controller_pb2_grpc.ResourceTapStub:
        return controller_pb2_grpc.ResourceTapStub(self.channel)

    def scraped_after(self, pod: str, t: float) -> bool:
        st = self.ctl.store.pods[(PODS[pod][0], pod)]
        return st.windows is not None and (st.windows.last_time or 0) > t

    async def settle(self) -> None:
        """Waits until every fake has been scraped after now (a fresh baseline)."""
        t = time.time()
        await until(lambda: all(self.scraped_after(p, t) for p in self.fakes))

    def state(self, pod: str) -> PodState:
        return self.ctl.store.pods[(PODS[pod][0], pod)]


async def start_mesh(tmp_path: Path, **controller_kw: float) -> Mesh:
    fakes = {name: FakeProxy(ns, dep, name) for name, (ns, dep, _, meshed) in PODS.items()
             if meshed}
    for f in fakes.values():
        await f.start()
    inv = tmp_path / "inventory.json"
    write_inventory(inv, fakes)
    kw = {"scrape_interval_s": 0.25, "scrape_timeout_s": 0.2, "inventory_poll_s": 0.1,
          "stale_after_s": 0.75,
          **controller_kw}
    ctl = Controller(inv, "127.0.0.1:0", **kw)
    await ctl.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ctl.port}")
    m = Mesh(ctl, fakes, inv, channel)
    await m.settle()
    return m


async def stop_mesh(m: Mesh) -> None:
    await m.channel.close()
    await m.ctl.stop(None)
    for f in m.fakes.values():
        await f.stop()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    """Fake proxies scraped four times a second (quick tests)."""
    m = await start_mesh(tmp_path)
    try:
        yield m
    finally:
        await stop_mesh(m)


@pytest.fixture
async def real_mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    """Fake proxies scraped as in production: every second, 0.8 s deadline."""
    m = await start_mesh(tmp_path, scrape_interval_s=1.0, scrape_timeout_s=0.8,
                         stale_after_s=2.5)
    try:
        yield m
    finally:
        await stop_mesh(m)
