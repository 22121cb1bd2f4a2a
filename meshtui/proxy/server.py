"""One proxy process: the listeners, telemetry, tap/metrics gRPC and admin
endpoints on one asyncio loop (uvloop when installed), and a graceful stop.

Embedding (tests, the demo)::

    server = ProxyServer(ProxyConfig(inbound=Address("127.0.0.1", 0), ...))
    await server.start()          # binds everything; RuntimeFailure if it cannot
    server.inbound_address        # the ports it got
    ...
    await server.stop()

From the command line, :func:`run` does the same until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
import socket
import sys
from typing import Any

from meshtui.errors import UsageError
from meshtui.model.inventory import Inventory, InventoryError
from meshtui.proxy.config import ProxyConfig, connection_cap
from meshtui.proxy.context import ProxyContext
from meshtui.proxy.listeners import Listener
from meshtui.proxy.pool import Pool, is_own
from meshtui.proxy.routing import Router
from meshtui.proxy.telemetry import Direction, HeldCertificate, Identity, Telemetry

log = logging.getLogger("meshtui.proxy")
# How long a proxy waits at start for a controller it cannot reach yet (starting
# together with it) before giving up; a refusal ends the wait at once.
FIRST_CERT_WAIT_S = 30.0


class ProxyServer:
    """A running (or startable) proxy.

    Args:
        config: addresses, identity, timeouts, limits.
        telemetry: the recorder to use; by default a new one for ``config``'s pod,
            naming peers from the inventory.
        mark: a socket mark for the proxy's own upstream connections, for iptables
            rules that skip marked traffic (rules that skip the proxy's UID need none).
    """

    def __init__(self, config: ProxyConfig, telemetry: Telemetry | None = None,
                 *, mark: int | None = None) -> None:
        self.config = config
        self._inventory: Inventory | None = None
        self._watcher: Any = None
        self._watch_task: asyncio.Task[None] | None = None
        if config.inventory:
            from meshtui.inventory_watch import InventoryWatcher

            try:
                self._watcher = InventoryWatcher(config.inventory, interval_s=1.0)
            except InventoryError as e:
                raise UsageError(f"proxy: {e}") from None
        app = (config.app.host, config.app.port) if config.app else None
        self.router = Router(app, self.inventory)
        self.telemetry = telemetry if telemetry is not None else Telemetry(
            Identity(config.namespace, config.deployment, config.pod, config.pod_ip),
            resolve=self.router.workload, redact=config.redact,
            max_capture_body=config.max_capture_body)
        self.mark = mark if mark is not None else config.mark
        self.ctx: ProxyContext | None = None
        self.inbound: Listener | None = None
        self.outbound: Listener | None = None
        self.grpc: Any = None
        self.admin: Any = None
        self.identity: Any = None  # a WorkloadIdentity when identity is on
        self.tap_gate: Any = None  # the tap port's mutual-TLS gate when identity is on
        self._private: str | None = None  # the directory of the gRPC server's socket
        self._started = False
        self._stopping = False

    def inventory(self) -> Inventory | None:
        """The inventory in force (re-read when its file changes)."""
        return self._watcher.inventory if self._watcher is not None else None

    # --- addresses it got (port 0 in the config asks the kernel for one) ------------

    @property
    def inbound_address(self) -> tuple[str, int] | None:
        return self.inbound.address if self.inbound else None

    @property
    def outbound_address(self) -> tuple[str, int] | None:
        return self.outbound.address if self.outbound else None

    @property
    def tap_address(self) -> tuple[str, int] | None:
        if self.grpc is None or self.config.tap is None:
            return None
        if self.tap_gate is not None:
            return self.config.tap.host, self.tap_gate.port
        from meshtui.proxy.grpc_service import bound_port

        return self.config.tap.host, bound_port(self.grpc)

    @property
    def admin_address(self) -> tuple[str, int] | None:
        if self.admin is None or self.config.admin is None:
            return None
        return self.config.admin.host, self.admin.port

    def ready(self) -> bool:
        """Listening and not stopping: what ``/ready`` answers."""
        return self._started and not self._stopping

    # --- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Binds every listener and endpoint; on failure nothing stays bound."""
        cfg = self.config
        # A pod with a loopback address of its own (the explicit-mode demo) calls
        # from it, so the peer's proxy can tell which pod is calling.
        own_lo = cfg.pod_ip if cfg.pod_ip.startswith("127.") and cfg.pod_ip != "127.0.0.1" else None
        pool = Pool(idle_timeout=cfg.timeouts.pool_idle, mark=self.mark, source_ip=own_lo)
        pool.own = self.router.own  # one set: the router's spellings, the pool's addresses
        self.ctx = ctx = ProxyContext(self.telemetry, cfg.timeouts, pool, cfg.max_in_flight)
        cap = cfg.max_connections or connection_cap(_raise_nofile())
        try:
            if cfg.identity is not None:
                pool.mesh_tls = await self._identity(cfg.identity)
                if cfg.link:
                    from meshtui.proxy.links import Links  # only with identity on

                    pool.links = Links(pool)
            if cfg.inbound is not None:
                self.inbound = Listener(ctx, Direction.INBOUND, True, self.router)
                await self.inbound.start(cfg.inbound.host, cfg.inbound.port)
            if cfg.outbound is not None:
                self.outbound = Listener(ctx, Direction.OUTBOUND, False, self.router)
                await self.outbound.start(cfg.outbound.host, cfg.outbound.port)
            for lst in (self.inbound, self.outbound):
                if lst is not None:
                    lst.max_conns = cap
                    self.router.own.add(lst.address)
                    if lst.address[0] in ("0.0.0.0", "::"):
                        self.router.own.add(("127.0.0.1", lst.address[1]))
            self._refuse_self_as_app()
            if cfg.tap is not None:
                from meshtui.proxy.grpc_service import start_grpc

                if self.identity is not None:
                    await self._gated_grpc(cfg.tap.host, cfg.tap.port)
                else:
                    self.grpc = await start_grpc(self.telemetry, cfg.tap.host, cfg.tap.port)
            if cfg.admin is not None:
                from meshtui.proxy.admin import start_admin

                self.admin = await start_admin(self.telemetry, cfg.admin.host, cfg.admin.port,
                                               self.ready)
        except BaseException:
            await self._close_endpoints()
            raise
        if self._watcher is not None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watcher.run())
        ctx.start_sweeper()
        self._started = True

    async def _identity(self, controller: Any) -> Any:
        """Gets the pod's first certificate (RuntimeFailure if refused or unreachable)."""
        from meshtui.errors import RuntimeFailure
        from meshtui.identity import identity_name
        from meshtui.identity.workload import IdentityError, WorkloadIdentity, grpc_asker
        from meshtui.proxy.mtls import MeshTls

        cfg = self.config
        sa = cfg.serviceaccount or cfg.deployment or "default"
        anchor = None
        if cfg.identity_anchor:
            from cryptography import x509

            try:
                with open(cfg.identity_anchor, "rb") as f:
                    anchor = x509.load_pem_x509_certificate(f.read())
            except (OSError, ValueError) as e:
                raise RuntimeFailure(f"proxy: cannot read the trust anchor "
                                     f"{cfg.identity_anchor!r}: {e}") from None
        def token() -> str:
            """The token file as it is now: it is written again before a token expires."""
            if cfg.identity_token_file:
                try:
                    with open(cfg.identity_token_file, encoding="utf-8") as f:
                        return f.read().strip() or cfg.identity_token
                except (OSError, UnicodeDecodeError) as e:
                    log.warning("proxy: cannot read the identity token %r again, sending "
                                "the one read before: %s", cfg.identity_token_file, e)
            return cfg.identity_token

        ident = WorkloadIdentity(identity_name(sa, cfg.namespace), grpc_asker(
            f"{controller.host}:{controller.port}", cfg.namespace, cfg.pod, token), anchor)
        try:
            await ident.start(wait_s=FIRST_CERT_WAIT_S)
        except IdentityError as e:
            raise RuntimeFailure(f"proxy: {e}") from None
        except ValueError as e:  # an answer that is no certificate (bad DER, wrong key)
            raise RuntimeFailure(f"proxy: the controller's certificate cannot be used: "
                                 f"{e}") from None
        self.identity = ident
        self.telemetry.certificate = lambda: _held(ident)
        if cfg.inventory is None:
            log.warning("proxy: --identity without --inventory: no meshed peer is known, "
                        "so outbound connections go plain (inbound TLS is still served)")
        return MeshTls(ident, self.inventory, own=(cfg.namespace, cfg.pod))

    async def _gated_grpc(self, host: str, port: int) -> None:
        """The tap/metrics server on a private Unix socket, the gate on the tap port."""
        import tempfile

        from meshtui.identity.names import CONTROLLER_IDENTITY
        from meshtui.proxy.grpc_service import start_grpc
        from meshtui.proxy.tapgate import TapGate

        self._private = tempfile.mkdtemp(prefix="meshtui-tap-")  # 0700
        sock = f"{self._private}/grpc.sock"
        self.grpc = await start_grpc(self.telemetry, host, port, unix=sock)
        tel = self.telemetry
        self.tap_gate = TapGate(self.identity, CONTROLLER_IDENTITY, sock, lambda why: (
            tel.count_connection_failure(Direction.INBOUND, why)))
        await self.tap_gate.start(host, port)

    def _refuse_self_as_app(self) -> None:
        """An ``--app`` that is one of the proxy's own listeners would have it relay
        to itself, a thousand connections a second: refused at start."""
        app = self.config.app
        if app is None:
            return
        try:
            infos = socket.getaddrinfo(app.host, app.port, type=socket.SOCK_STREAM)
        except OSError:
            return  # unresolvable now: requests will get 502 for it
        for info in infos:
            addr = info[4]
            if is_own((str(addr[0]), int(addr[1])), "", self.router.own):
                raise UsageError(f"proxy: --app {app.host}:{app.port} is this proxy's own "
                                 "listener: it would relay to itself")

    async def stop(self, grace: float | None = None) -> None:
        """Stops listening, lets requests under way finish (``grace`` seconds at most,
        the config's drain timeout by default), then cuts what is left."""
        if self._stopping:
            return
        self._stopping = True
        ctx = self.ctx
        for lst in (self.inbound, self.outbound):
            if lst is not None:
                lst.close()
        if ctx is not None:
            ctx.drain()
            limit = self.config.timeouts.drain if grace is None else grace
            loop = asyncio.get_running_loop()
            end = loop.time() + limit
            while ctx.conns and loop.time() < end:
                await asyncio.sleep(0.02)
            ctx.abort_all()
            await ctx.stop()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self._close_endpoints()

    async def _close_endpoints(self) -> None:
        if self.tap_gate is not None:
            await self.tap_gate.close()
            self.tap_gate = None
        if self.identity is not None:
            await self.identity.stop()
            self.identity = None
        for lst in (self.inbound, self.outbound):
            if lst is not None:
                lst.close()
        if self.grpc is not None:
            await self.grpc.stop(0)
            self.grpc = None
        if self._private is not None:
            import shutil

            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
        if self.admin is not None:
            self.admin.close()
            await self.admin.wait_closed()
            self.admin = None
        self.telemetry.hub.close()


def _held(ident: Any) -> HeldCertificate | None:
    """What a WorkloadIdentity holds, as the telemetry reports it (None: nothing yet)."""
    b = ident.bundle
    if b is None:
        return None
    return HeldCertificate(b.name, b.leaf.not_valid_before_utc.timestamp(),
                           b.leaf.not_valid_after_utc.timestamp(), ident.refreshed_at,
                           ident.refreshes, ident.refresh_errors)


def _raise_nofile() -> int:
    """Raises the soft limit on open files to the hard one, as servers do, and
    returns it (the connection cap is derived from it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def serve(config: ProxyConfig, *, mark: int | None = None,
                started: Any = None) -> None:
    """Runs a proxy until SIGTERM or SIGINT, then stops it gracefully.

    Args:
        started: called with the started :class:`ProxyServer` (tests, logs).
    """
    server = ProxyServer(config, mark=mark)
    await server.start()
    # Everything loaded so far lives as long as the process: keep it out of the
    # cyclic collector's full passes, which would otherwise walk it all.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if started is not None:
        started(server)
    try:
        await stop.wait()
    finally:
        await server.stop()


def run(config: ProxyConfig, *, mark: int | None = None) -> int:
    """The ``meshtui proxy`` process: serve until signalled; 0 on a clean stop."""
    from meshtui.runtime import tune_gc

    tune_gc()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)

    def announce(server: ProxyServer) -> None:
        parts = []
        for what, addr in (("inbound", server.inbound_address),
                           ("outbound", server.outbound_address),
                           ("tap", server.tap_address), ("admin", server.admin_address)):
            if addr is not None:
                parts.append(f"{what} {addr[0]}:{addr[1]}")
        ident = f"{config.namespace}/{config.pod or config.deployment or '-'}"
        print(f"proxy {ident}: " + ", ".join(parts), file=sys.stderr, flush=True)

    try:
        loop.run_until_complete(serve(config, mark=mark, started=announce))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return 0
