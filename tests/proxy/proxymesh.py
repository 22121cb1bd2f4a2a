"""Helpers and fixtures for the proxy's data-path tests: a real upstream and a real proxy on
loopback, in the test's own event loop, with the real telemetry recorder."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pytest
from proxykit import Upstream

from meshtui.model.inventory import Address
from meshtui.proxy.config import ProxyConfig, Timeouts
from meshtui.proxy.server import ProxyServer

FAST = Timeouts(detect=0.3, header_read=0.6, idle=5.0, connect=1.0, response=0.8, drain=1.0)


App = TypeVar("App")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mesh(Generic[App]):
    """An upstream app and the proxy in front of it."""

    app: App
    proxy: ProxyServer

    @property
    def inbound(self) -> tuple[str, int]:
        assert self.proxy.inbound_address is not None
        return self.proxy.inbound_address

    @property
    def outbound(self) -> tuple[str, int]:
        assert self.proxy.outbound_address is not None
        return self.proxy.outbound_address


def proxy_config(app_port: int | None, **kw: object) -> ProxyConfig:
    base: dict[str, object] = dict(
        inbound=Address("127.0.0.1", 0), outbound=Address("127.0.0.1", 0),
        app=Address("127.0.0.1", app_port) if app_port else None, tap=None, admin=None,
        pod="web-0", namespace="ns", deployment="web", timeouts=FAST)
    base.update(kw)
    return ProxyConfig(**base)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def meshed(app: Any) -> AsyncIterator[Mesh[Any]]:
    """A proxy in front of a started ``app`` (anything with ``port`` and ``close()``);
    both stopped at the end."""
    proxy = ProxyServer(proxy_config(app.port))
    await proxy.start()
    try:
        yield Mesh(app, proxy)
    finally:
        await proxy.stop(grace=0.2)
        await app.close()


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh[Upstream]]:
    async with meshed(await Upstream().start()) as m:
        yield m
