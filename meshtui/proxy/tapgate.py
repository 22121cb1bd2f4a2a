"""The tap/metrics port under identity: mutual TLS, and only the controller gets in.

The gRPC server itself listens on a Unix socket in a directory only this process's
user can enter; the gate listens on the tap address, completes a TLS handshake with
the proxy's current certificate (the client's must chain to the trust anchor and be
valid now) and relays to the server only a client whose identity is the controller's.
Anyone else is cut at the handshake and counted
(``meshtui_connection_failures_total{reason="tap_handshake"|"tap_identity"}``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from meshtui.errors import RuntimeFailure
from meshtui.identity.names import peer_identity
from meshtui.identity.workload import WorkloadIdentity
from meshtui.proxy.mtls import terminate


class TapGate:
    def __init__(self, identity: WorkloadIdentity, allowed: str, backend: str,
                 refused: Callable[[str], None]) -> None:
        self.identity = identity
        self.allowed = allowed
        self.backend = backend  # the gRPC server's Unix socket path
        self.refused = refused
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(lambda: _Accepted(self), host, port)
        except OSError as e:
            raise RuntimeFailure(f"cannot listen on {host}:{port} for tap/metrics gRPC: "
                                 f"{(e.strerror or str(e)).lower()}") from None
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


class _Accepted(asyncio.Protocol):
    """A connection just accepted: handed at once to the TLS server side."""

    def __init__(self, gate: TapGate) -> None:
        self.gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gate = self.gate
        ctx = gate.identity.server_ctx
        if ctx is None:
            transport.close()
            return
        terminate(asyncio.get_running_loop(), transport, _Front(gate), ctx, b"",
                  lambda: gate.refused("tap_handshake"))


class _Front(asyncio.Protocol):
    """The decrypted side of an admitted client, relayed to the gRPC server."""

    def __init__(self, gate: TapGate) -> None:
        self.gate = gate
        self.transport: Any = None
        self.back: asyncio.Transport | None = None
        self.held: list[bytes] | None = []
        self.opening: asyncio.Task[None] | None = None  # kept: a task nobody holds may go

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if peer_identity(transport.get_extra_info("ssl_object")) != self.gate.allowed:
            self.gate.refused("tap_identity")
            transport.abort()  # type: ignore[attr-defined]
            return
        self.opening = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            back, _ = await loop.create_unix_connection(lambda: _Back(self), self.gate.backend)
        except OSError:
            self.transport.abort()
            return
        if self.transport.is_closing():  # the client left while this was connecting
            back.close()
            return
        self.back = back
        for data in self.held or ():
            back.write(data)
        self.held = None

    def data_received(self, data: bytes) -> None:
        if self.back is not None:
            self.back.write(data)
        elif self.held is not None:
            self.held.append(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.held = None
        if self.back is not None:
            self.back.close()


class _Back(asyncio.Protocol):
    def __init__(self, front: _Front) -> None:
        self.front = front

    def data_received(self, data: bytes) -> None:
        self.front.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.transport.close()
