"""The inbound and outbound listeners: a listening socket each, whose accepted
connections share one :class:`~meshtui.proxy.context.ProxyContext`."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

from meshtui.errors import RuntimeFailure
from meshtui.proxy.context import ProxyContext
from meshtui.proxy.downstream import Downstream
from meshtui.proxy.routing import Router

__all__ = ["Listener", "ProxyContext"]


class Listener:
    """One listening socket (inbound or outbound) and how its connections route.

    Args:
        ctx: the proxy's shared state.
        direction: telemetry's Direction (INBOUND or OUTBOUND).
        inbound: whether traffic here goes to the pod's app.
        router: routing decisions.
        transparent: read each connection's original destination (iptables).
    """

    def __init__(self, ctx: ProxyContext, direction: Any, inbound: bool, router: Router,
                 transparent: bool = True) -> None:
        self.ctx = ctx
        self.direction = direction
        self.inbound = inbound
        self.router = router
        self.transparent = transparent
        self.server: asyncio.AbstractServer | None = None
        self.address: tuple[str, int] = ("", 0)
        self.open_conns = 0
        self.max_conns = 10_000

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Binds and listens; RuntimeFailure naming the address if it cannot."""
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.server = await self.ctx.loop.create_server(
                lambda: Downstream(self), host, port, reuse_address=True, backlog=1024)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise RuntimeFailure(f"proxy: cannot listen on {shown}: address already in use"
                                     ) from None
            raise RuntimeFailure(f"proxy: cannot listen on {shown}: "
                                 f"{(e.strerror or str(e)).lower()}") from None
        sock = self.server.sockets[0]
        name = sock.getsockname()
        self.address = (name[0], name[1])
        return self.address

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
