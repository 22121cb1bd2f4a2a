"""Wiring: the inventory watch, the scraper and the gRPC server, as one object.

From Python (the demo, tests)::

    ctl = Controller("inventory.yaml", listen="127.0.0.1:8086")
    port = await ctl.start()      # raises ListenError if the address is taken
    ...
    await ctl.stop()

or ``await serve(listen, inventory_path)`` to run until cancelled.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from meshtui.controller.dial import Dialer, DialTls
from meshtui.controller.identity_service import IdentityService
from meshtui.controller.scraper import Scraper
from meshtui.controller.service import MeshService, ResourceTapService, StatsService
from meshtui.controller.store import MeshStore
from meshtui.identity.authority import Authority
from meshtui.inventory_watch import InventoryWatcher
from meshtui.v1 import controller_pb2, controller_pb2_grpc, identity_pb2, identity_pb2_grpc

log = logging.getLogger("meshtui.controller")

SERVICE_NAMES = (
    *(controller_pb2.DESCRIPTOR.services_by_name[n].full_name
      for n in ("Mesh", "Stats", "ResourceTap")),
    identity_pb2.DESCRIPTOR.services_by_name["Identity"].full_name,
)


class ListenError(RuntimeError):
    """The listen address cannot be bound (taken, or not an address of this host)."""


class Controller:
    """The controller: inventory watch + scraper + gRPC services.

    Args:
        inventory: path of the YAML/JSON inventory (read now: InventoryError if bad).
        listen: ``HOST:PORT`` to serve clients on; port 0 picks a free one.
        scrape_interval_s: the scrape tick.
        scrape_timeout_s: each scrape's deadline.
        stale_after_s: a proxy unanswered this long is unreachable.
        inventory_poll_s: how often the inventory file is looked at.
        scrape_slices: phases each scrape interval is spread over (1: all at once).
        via: an outbound proxy's HOST:PORT to reach the proxies through (see
            :mod:`meshtui.controller.dial`); None: directly.
        identity: the certificate authority the Identity service signs with (see
            :meth:`Authority.in_state_dir`); None: no identity service.
        identity_listen: ``HOST:PORT`` of the TLS port the proxies ask for certificates
            at (see :mod:`meshtui.controller.identity_service`); None: ``listen``'s host,
            a free port (:attr:`identity_port` says which).
        api_token: the bearer credential clients must send (None: none needed).
    """

    def __init__(self, inventory: str | Path, listen: str = "127.0.0.1:8086", *,
                 scrape_interval_s: float = 1.0, scrape_timeout_s: float = 0.8,
                 stale_after_s: float = 2.5, inventory_poll_s: float = 0.5,
                 scrape_slices: int = 10, via: str | None = None,
                 identity: Authority | None = None, identity_listen: str | None = None,
                 api_token: str | None = None) -> None:
        self.api_token = api_token
        self.listen = listen
        self.identity_listen = identity_listen or f"{listen.rpartition(':')[0]}:0"
        self._authority = identity
        self.watcher = InventoryWatcher(inventory, interval_s=inventory_poll_s)
        self.store = MeshStore(self.watcher.inventory, stale_after_s=stale_after_s)
        self.watcher.on_change = self.store.set_inventory
        self.dialer = Dialer(via, _dial_tls(identity, self.store) if identity else None)
        self.scraper = Scraper(self.store, scrape_interval_s, scrape_timeout_s, scrape_slices,
                               self.dialer)
        self.identity = (IdentityService(self.store, identity)
                         if identity is not None else None)
        self.port = 0
        self.identity_port = 0
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        """Binds, starts serving and scraping; returns the bound port."""
        _probe(self.listen)
        if self._authority is not None:
            _probe(self.identity_listen)
        from meshtui.controller.auth import BearerCheck

        checks = [BearerCheck(self.api_token)] if self.api_token else []
        server = grpc.aio.server(interceptors=checks, options=[
            ("grpc.so_reuseport", 0),  # a taken port must fail, not be shared
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            # Clients ping a quiet stream every few seconds to notice a frozen
            # controller (meshtui.client.controller): answer, never refuse, them.
            ("grpc.http2.min_ping_interval_without_data_ms", 1000),
            ("grpc.http2.max_ping_strikes", 0),
        ])
        controller_pb2_grpc.add_MeshServicer_to_server(MeshService(self.store), server)
        controller_pb2_grpc.add_StatsServicer_to_server(StatsService(self.store), server)
        controller_pb2_grpc.add_ResourceTapServicer_to_server(
            ResourceTapService(self.store, self.dialer), server)
        if self.identity is not None:
            identity_pb2_grpc.add_IdentityServicer_to_server(self.identity, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        try:
            port = server.add_insecure_port(self.listen)
        except RuntimeError as e:
            port = 0
            why = _why(e)
        else:
            why = "address in use or not local"
        if not port:
            await server.stop(None)
            raise ListenError(f"cannot listen on {self.listen}: {why}")
        if self._authority is not None:
            from meshtui.controller.identity_service import server_credentials

            try:
                self.identity_port = server.add_secure_port(
                    self.identity_listen, server_credentials(self._authority))
            except RuntimeError as e:
                await server.stop(None)
                raise ListenError(f"cannot listen on {self.identity_listen}: {_why(e)}"
                                  ) from None
            if not self.identity_port:
                await server.stop(None)
                raise ListenError(f"cannot listen on {self.identity_listen}: address in use "
                                  "or not local")
        await server.start()
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        self.port = port
        self._tasks = [asyncio.create_task(self.scraper.run()),
                       asyncio.create_task(self.watcher.run())]
        host = self.listen.rpartition(":")[0]
        log.info("controller listening on %s:%d, %d pods in the inventory", host, port,
                 len(self.store.pods))
        if self.identity_port:
            log.info("identity (TLS) on %s:%d", self.identity_listen.rpartition(":")[0],
                     self.identity_port)
        return port

    async def stop(self, grace: float | None = 0.5) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def _dial_tls(authority: Authority, store: MeshStore) -> DialTls:
    """The controller's own certificate, signed by its issuer, for the tap ports."""
    from meshtui.identity import certs, identity_name
    from meshtui.identity.names import CONTROLLER_IDENTITY, RENEW_AT

    def issue() -> tuple[grpc.ChannelCredentials, float]:
        key = certs.new_key()
        got = authority.issue(CONTROLLER_IDENTITY, key.public_key())
        creds = grpc.ssl_channel_credentials(
            root_certificates=certs.cert_pem(got.anchor), private_key=certs.key_pem(key),
            certificate_chain=certs.cert_pem(got.leaf) + certs.cert_pem(got.issuer))
        begin = got.leaf.not_valid_before_utc.timestamp()
        end = got.leaf.not_valid_after_utc.timestamp()
        return creds, begin + RENEW_AT * (end - begin)

    def server_identity(addr: str) -> str | None:
        host, _, port = addr.rpartition(":")
        for st in store.pods.values():
            p = st.pod.proxy
            if p is not None and p.host == host and str(p.port) == port:
                return identity_name(st.pod.service_account, st.pod.namespace)
        return None

    return DialTls(issue, server_identity)


def _probe(listen: str) -> None:
    """Binds the address once with a plain socket, so that a taken port is one clear
    line (gRPC's own bind failure also logs a line of C++ to stderr)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ListenError(f"bad listen address {listen!r}: expected HOST:PORT")
    if int(port) == 0:
        return
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError as e:
        raise ListenError(f"cannot listen on {listen}: {e.strerror or e}") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does
        try:
            s.bind(sockaddr)
        except OSError as e:
            why = "address in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            raise ListenError(f"cannot listen on {listen}: {why}") from None


def _why(e: Exception) -> str:
    text = " ".join(str(e).split())
    return "address in use" if "Failed to bind" in text or "in use" in text else text


async def serve(listen: str, inventory: str | Path, **kw: Any) -> None:
    """Runs a controller until cancelled (``kw``: the options of :class:`Controller`)."""
    ctl = Controller(inventory, listen, **kw)
    await ctl.start()
    try:
        await ctl.wait()
    finally:
        await ctl.stop()
