"""The seam between a client connection and the protocol spoken on it.

:class:`~meshtui.proxy.downstream.Downstream` accepts a connection, detects its
protocol and hands every byte from the client to a :class:`Codec` — HTTP/1.1
(:mod:`meshtui.proxy.http1_server`) or HTTP/2 (:mod:`meshtui.proxy.http2`).
A codec reports requests to telemetry through the same calls whatever it
speaks (``telemetry.request`` and the observation it returns), so telemetry,
tap and the pool never learn which protocol a request came over.

Both interfaces live here, apart from their implementations, so that the
connection, the codecs, the exchange and the pool depend on this module and
not on one another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.proxy.context import ProxyContext
    from meshtui.proxy.pool import Upstream

# Reasons reading from the client is paused (bits of Connection.paused).
R_PIPELINE, R_PENDING, R_UPSTREAM, R_WAIT = 1, 2, 4, 8


class Codec(Protocol):
    """One protocol's handling of one client connection."""

    def feed(self, data: bytes) -> None:
        """Bytes from the client."""

    def eof(self) -> bool:
        """The client half-closed; True keeps the connection open to answer."""

    def lost(self) -> None:
        """The connection closed: end what is under way (counted as reset)."""

    def tick(self, now: float) -> None:
        """The sweeper's call: enforce the protocol's timeouts."""

    def drain(self) -> None:
        """Shutting down: close when nothing is under way."""

    def upstream(self) -> Upstream | None:
        """The upstream connection whose reading follows the client's writability."""

    def idle(self) -> bool:
        """No request under way: the connection may be closed to make room."""


class Connection(Protocol):
    """What a codec may use of its client connection."""

    ctx: ProxyContext
    direction: Any
    peer: tuple[str, int]
    orig: tuple[str, int] | None
    conn_id: int
    transport: Any
    tcp: Any
    buf: bytearray
    paused: int
    write_paused: bool
    client_eof: bool
    closed: bool
    active: float  # the last byte from the client
    out: list[bytes] | None  # writes held by an open batch
    tls_id: str  # the peer's identity over mutual TLS ('' when plain)

    @property
    def inbound(self) -> bool: ...
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def upstream_paused(self, paused: bool) -> None: ...
    def route(self, authority: str | None) -> tuple[tuple[str, int], tuple[str, int]]: ...
    def terminates_connect(self) -> bool: ...
    def pause(self, reason: int) -> None: ...
    def resume(self, reason: int) -> None: ...
    def stop_reading(self) -> None: ...
    def enter_tunnel(self, up: Upstream, ex: Any = None, dst: tuple[str, int] | None = None
                     ) -> None: ...
    def tunnel_data(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
