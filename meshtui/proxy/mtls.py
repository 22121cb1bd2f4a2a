"""Mutual TLS between meshed pods: the proxy's side of workload identity.

Inbound, a connection whose first bytes are a TLS ClientHello is terminated here
with the proxy's certificate (the client's must chain to the trust anchor) and
what it carries is then detected and proxied like a plain connection; anything
else is served plain as before. Outbound, a connection to a meshed pod's inbound
proxy is wrapped in TLS and the server's certificate must name the identity the
inventory gives that pod.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshtui.identity import identity_name
from meshtui.identity.names import peer_identity
from meshtui.model.inventory import Inventory

if TYPE_CHECKING:  # the certificates' side (cryptography) is loaded only with identity on
    from meshtui.identity.workload import WorkloadIdentity

Key = tuple[str, int]
# Seconds a TLS handshake may take before the connection is dropped.
HANDSHAKE_TIMEOUT = 10.0
# A TLS record carrying a handshake (0x16) of TLS 1.0..1.3 (0x03 0x01..0x04).
_HANDSHAKE, _MAJOR = 0x16, 0x03


def looks_like_tls(buf: bytes | bytearray) -> bool | None:
    """Whether a connection's first bytes are a TLS ClientHello (None: too few yet)."""
    if not buf:
        return None
    if buf[0] != _HANDSHAKE:
        return False
    if len(buf) < 3:
        return None
    return buf[1] == _MAJOR and 1 <= buf[2] <= 4


def client_hello_name(buf: bytes | bytearray) -> tuple[bool, str | None]:
    """(whether the first TLS record is all here, the server name its ClientHello asks
    for, None if none or not one). A meshed peer names the identity it expects; any
    other name is an unmeshed client's own TLS, for the app."""
    if len(buf) < 5:
        return False, None
    n = int.from_bytes(buf[3:5], "big")
    if len(buf) < 5 + n:
        return False, None
    rec = bytes(buf[5:5 + n])
    try:
        if rec[0] != 1:  # not a ClientHello
            return True, None
        body = rec[4:4 + int.from_bytes(rec[1:4], "big")]
        p = 2 + 32  # version, random
        p += 1 + body[p]  # session id
        p += 2 + int.from_bytes(body[p:p + 2], "big")  # cipher suites
        p += 1 + body[p]  # compression methods
        end = p + 2 + int.from_bytes(body[p:p + 2], "big")
        p += 2
        while p + 4 <= end:
            kind = int.from_bytes(body[p:p + 2], "big")
            size = int.from_bytes(body[p + 2:p + 4], "big")
            p += 4
            if kind == 0 and body[p + 2] == 0:  # server_name: its first, a host name
                length = int.from_bytes(body[p + 3:p + 5], "big")
                return True, body[p + 5:p + 5 + length].decode("ascii", "replace")
            p += size
    except IndexError:  # cut short or malformed: no name
        pass
    return True, None


class MeshTls:
    """The proxy's identity and what it expects of its peers.

    Args:
        identity: this proxy's certificate, renewed in the background.
        inventory: the inventory in force (names each meshed pod's identity).
    """

    def __init__(self, identity: WorkloadIdentity,
                 inventory: Callable[[], Inventory | None],
                 own: tuple[str, str] | None = None) -> None:
        self.identity = identity
        self.inventory = inventory
        self.own = own  # (namespace, pod) of this proxy's pod: its app is dialled plain
        self._seen: Inventory | None = None
        self._names: dict[Key, str] = {}

    @property
    def name(self) -> str:
        return self.identity.name

    def server_identity(self, key: Key) -> str | None:
        """The identity of the meshed pod whose inbound proxy listens at ``key``, or
        whose own address it is (None: not a meshed peer's, spoken to in plain)."""
        inv = self.inventory()
        if inv is not self._seen:  # a new inventory: its meshed pods' inbound ports
            self._seen = inv
            # Inbound ports only. A meshed pod's tap port admits the controller's
            # identity alone (meshtui.proxy.tapgate), and the controller dials it with
            # its own certificate: were the proxy to wrap connections to tap ports,
            # the controller pod's proxy would lend that identity to any process
            # able to reach its outbound port. They go plain, and the gate cuts them.
            # A meshed pod's own address too: in transparent mode (iptables) a caller's
            # proxy dials it, and the pod's rules hand the connection to its inbound
            # proxy. (In explicit mode the router dials the inbound port instead.) Not
            # this proxy's own pod's: that is its app, which inbound traffic reaches.
            self._names = {} if inv is None else {
                (a.host, a.port): identity_name(p.service_account, p.namespace)
                for p in inv.pods if p.meshed and p.inbound is not None
                for a in (p.inbound, None if (p.namespace, p.name) == self.own
                          else p.address) if a is not None}
        return self._names.get(key)

    def client(self, key: Key) -> tuple[ssl.SSLContext, str] | None:
        """(context, expected server identity) for an upstream connection to ``key``."""
        want = self.server_identity(key)
        ctx = self.identity.client_ctx
        if want is None or ctx is None:
            return None
        return ctx, want


def check_server(transport: Any, want: str) -> None:
    """Raises OSError if the TLS peer of ``transport`` is not ``want``."""
    obj = transport.get_extra_info("ssl_object")
    got = peer_identity(obj) if obj is not None else ""
    if got != want:
        transport.abort()
        raise OSError(f"peer identity {got or '(none)'} is not the expected {want}")


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The TLS protocol of the loop in use (uvloop's own, or asyncio's)."""
    try:
        import uvloop
        import uvloop.loop

        if isinstance(loop, uvloop.Loop):
            return uvloop.loop.SSLProtocol  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        pass
    from asyncio.sslproto import SSLProtocol

    return SSLProtocol


def terminate(loop: asyncio.AbstractEventLoop, transport: Any, app: asyncio.Protocol,
              ctx: ssl.SSLContext, first: bytes, on_fail: Callable[[], None]) -> None:
    """Continues a plain transport, whose first bytes ``first`` were already read, as the
    server side of TLS: ``app`` gets ``connection_made`` once the handshake succeeds and
    the decrypted bytes after it. ``on_fail`` is called if the handshake fails."""
    waiter = loop.create_future()

    def done(f: asyncio.Future[None]) -> None:
        if f.cancelled() or f.exception() is not None:
            on_fail()

    waiter.add_done_callback(done)
    proto = _ssl_protocol_class(loop)(loop, app, ctx, waiter, server_side=True,
                                      ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
    transport.set_protocol(proto)
    proto.connection_made(transport)
    view = memoryview(first)
    while view:
        buf = proto.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        proto.buffer_updated(n)
        view = view[n:]
