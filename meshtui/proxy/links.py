"""The caller's side of links: one mutual-TLS connection per meshed peer address,
each new upstream connection to it a stream of one (see :mod:`meshtui.proxy.link`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

from meshtui.identity.names import LINK_ALPN
from meshtui.proxy.link import Link
from meshtui.proxy.mtls import check_server
from meshtui.proxy.pool import Key, LoopDetected, Upstream, dial, is_own

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.pool import Pool

log = logging.getLogger("meshtui.proxy")


class Links:
    """The links a proxy holds to its meshed peers, per peer address."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.live: dict[Key, list[Link]] = {}
        self._opening: dict[Key, asyncio.Task[Link | None]] = {}
        # Peers that did not take the link (an older proxy): a TLS connection per
        # connection, as before.
        self.unlinked: set[Key] = set()
        self.opened = 0  # links opened, for the proxy's own accounting and tests

    async def stream(self, key: Key, want: str, pool: Pool | None) -> Upstream | None:
        """A new upstream connection to ``key``, whose proxy must be ``want``, over a
        link (None: the peer takes no links; connect on your own). OSError as a
        connection's would be."""
        if key in self.unlinked:
            return None
        current = self._ctx()
        for _ in range(3):
            link = None
            for k in list(self.live.get(key, ())):
                if k.ctx is not current:
                    # Opened with a certificate since renewed: it ends with its streams,
                    # and new connections go over a link with the new one.
                    k.close()
                elif link is None and k.can_open():
                    link = k
            if link is None:
                task = self._opening.get(key)
                if task is None:
                    task = asyncio.get_running_loop().create_task(self._open(key, want))
                    # Its failure is each waiter's; with none left (all timed out) it
                    # is still taken, not reported as never retrieved.
                    task.add_done_callback(lambda t: t.cancelled() or t.exception())
                    self._opening[key] = task
                # Shielded: a caller that gives up (its connect timeout) leaves the
                # link opening for the others.
                link = await asyncio.shield(task)
                if link is None:
                    return None
                if not link.can_open():
                    continue  # full already, or gone: another
            up = Upstream(pool, key)
            link.open_stream(up, f"{key[0]}:{key[1]}")
            return up
        raise ConnectionResetError(f"no link to {key[0]}:{key[1]} could take a stream")

    async def _open(self, key: Key, want: str) -> Link | None:
        pool = self.pool
        try:
            ctx = self._ctx()
            if ctx is None:
                return None
            link = await dial(key, lambda: Link(True, lost=self._lost), pool.mark,
                              pool.source_ip, (ctx, want))
            t = link.transport
            check_server(t, want)
            if t.get_extra_info("ssl_object").selected_alpn_protocol() != LINK_ALPN:
                log.info("proxy: %s:%d takes no links: a TLS connection per connection",
                         *key)
                self.unlinked.add(key)
                t.close()
                return None
            name, peer = t.get_extra_info("sockname"), t.get_extra_info("peername")
            if name and peer and is_own((peer[0], peer[1]), name[0], pool.own):
                t.abort()
                raise LoopDetected("the destination is this proxy")
            if name and peer:
                # Its own address, so that a loop back to the proxy is told (pool.hops).
                link.hop = (name[0], name[1])
                pool.hops[link.hop] = (peer[0], peer[1])
            link.key = key
            link.ctx = ctx
            self.live.setdefault(key, []).append(link)
            self.opened += 1
            return link
        finally:
            self._opening.pop(key, None)

    def _ctx(self) -> ssl.SSLContext | None:
        m = self.pool.mesh_tls
        return m.identity.link_ctx if m is not None else None

    def _lost(self, link: Link) -> None:
        if link.hop is not None:
            self.pool.hops.pop(link.hop, None)
        if link.key is not None:
            links = self.live.get(link.key)
            if links and link in links:
                links.remove(link)
                if not links:
                    del self.live[link.key]

    def sweep(self, now: float, idle_timeout: float) -> None:
        """Closes links that have carried nothing for ``idle_timeout`` seconds."""
        for links in list(self.live.values()):
            for link in list(links):
                if not link.streams and now - link.idle_since > idle_timeout:
                    link.close()

    def close(self) -> None:
        for links in list(self.live.values()):
            for link in list(links):
                link.close()
