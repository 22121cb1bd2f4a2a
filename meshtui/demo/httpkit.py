"""A small HTTP/1.1 server and keep-alive client for the demo's apps.

The demo apps are ordinary programs that know nothing of the mesh: they serve
HTTP and call each other by service name, through ``HTTP_PROXY`` when one is
set (explicit interception) or straight to the address (where iptables
redirects them). This is enough HTTP for that — fixed-length bodies,
keep-alive — and no more; the proxy is where the full protocol lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        q = self.target.partition("?")[2]
        out = {}
        for part in q.split("&"):
            if part:
                k, _, v = part.partition("=")
                out[k] = v
        return out


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]

_REASONS = {200: "OK", 404: "Not Found", 400: "Bad Request", 500: "Internal Server Error",
            503: "Service Unavailable", 502: "Bad Gateway", 504: "Gateway Timeout"}


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    except asyncio.LimitOverrunError as e:
        raise ValueError("header section too large") from e
    lines = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    n = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(n) if n else b""


def connection_handler(
    handler: Handler,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The per-connection loop serving ``handler`` (keep-alive until the client closes)."""

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                line, headers = head
                method, target, version = [*line.split(" ", 2), "", ""][:3]
                body = await _read_body(reader, headers)
                try:
                    resp = await handler(Request(method, target, headers, body))
                except Exception as e:  # an app bug answers 500, the server lives on
                    resp = Response(500, f"{type(e).__name__}: {e}\n".encode())
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                out = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}"]
                hdrs = {"content-type": "application/json", **resp.headers}
                hdrs["content-length"] = str(len(resp.body))
                if close:
                    hdrs["connection"] = "close"
                out += [f"{k}: {v}" for k, v in hdrs.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + resp.body)
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return on_conn


async def serve(handler: Handler, host: str, port: int) -> asyncio.Server:
    """Starts serving ``handler`` at host:port and returns the server."""
    return await asyncio.start_server(
        connection_handler(handler), host, port, limit=MAX_HEAD, reuse_address=True
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Client:
    """A keep-alive HTTP/1.1 client with one idle connection pool per address.

    With ``proxy`` set, every request goes to that address in absolute form
    (``GET http://emoji-svc:8080/api/list``), as ``HTTP_PROXY`` tells programs to.
    """

    def __init__(self, proxy: str | None = None, timeout: float = 5.0,
                 resolve: Callable[[str], Awaitable[str]] | None = None) -> None:
        self.proxy = proxy
        self.timeout = timeout
        self.resolve = resolve  # name → IP, for calls made without a proxy
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader,
                                                      asyncio.StreamWriter]]] = {}

    async def request(self, method: str, url: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Response:
        """Sends one request; raises OSError/TimeoutError when the peer fails."""
        u = urlsplit(url)
        authority = u.netloc
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        if self.proxy:
            phost, _, pport = self.proxy.rpartition(":")
            addr = (phost, int(pport))
            target = url
        else:
            host = u.hostname or "127.0.0.1"
            if self.resolve is not None and not _is_ip(host):
                host = await self.resolve(host)
            addr = (host, u.port or 80)
        head = [f"{method} {target} HTTP/1.1", f"Host: {authority}",
                f"Content-Length: {len(body)}", "User-Agent: meshtui-demo"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        return await asyncio.wait_for(self._exchange(addr, payload), self.timeout)

    async def _exchange(self, addr: tuple[str, int], payload: bytes) -> Response:
        pool = self._idle.setdefault(addr, [])
        for attempt in (0, 1):
            fresh = not pool
            if pool:
                reader, writer = pool.pop()
            else:
                reader, writer = await asyncio.open_connection(*addr, limit=MAX_HEAD)
            try:
                writer.write(payload)
                await writer.drain()
                head = await _read_head(reader)
                if head is None:
                    raise ConnectionResetError("connection closed before a response")
                line, headers = head
                status = int(line.split(" ", 2)[1])
                body = await _read_body(reader, headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                if fresh or attempt:  # a stale pooled connection gets one retry
                    raise
                continue
            if headers.get("connection", "").lower() == "close":
                writer.close()
            elif len(pool) < 32:
                pool.append((reader, writer))
            else:
                writer.close()
            return Response(status, body, headers)
        raise ConnectionResetError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
        self._idle.clear()
