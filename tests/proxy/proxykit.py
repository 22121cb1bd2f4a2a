"""A small real HTTP/1.1 upstream and client for the proxy's tests.

Written with plain asyncio streams and hand-rolled framing — independent of the
proxy's own parser — so that a framing bug in the proxy shows up as a mismatch
here rather than being mirrored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """What the upstream received."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    body_bytes: int = 0
    connections: int = 0


async def read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def _read_exactly(reader: asyncio.StreamReader, size: int,
                        sink: list[bytes] | None) -> int:
    left = size
    while left:
        piece = await reader.read(min(left, 1 << 16))
        if not piece:
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(piece)
        if sink is not None:
            sink.append(piece)
    return size


def hget(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


async def read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]],
                    sink: list[bytes] | None = None, until_close: bool = False,
                    trailers: list[tuple[str, str]] | None = None) -> int:
    """Reads a body by its framing; returns its length, appending pieces to ``sink``."""
    n = 0
    te = (hget(headers, "transfer-encoding") or "").lower()
    if "chunked" in te:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    line = await reader.readuntil(b"\r\n")
                    if line == b"\r\n":
                        return n
                    if trailers is not None:
                        k, _, v = line.decode("latin-1").partition(":")
                        trailers.append((k.strip(), v.strip()))
            n += await _read_exactly(reader, size, sink)
            await reader.readexactly(2)
    cl = hget(headers, "content-length")
    if cl is not None:
        return await _read_exactly(reader, int(cl), sink)
    if until_close:
        while piece := await reader.read(1 << 16):
            n += len(piece)
            if sink is not None:
                sink.append(piece)
    return n


class Upstream:
    """The app behind the proxy. Routes (by path):

    ``/hello`` 200 "hello"; ``/echo`` the request body back; ``/count`` the
    number of body bytes it read; ``/headers`` the request headers as JSON;
    ``/status/N``; ``/slow?ms=N``; ``/length?n=N`` and ``/stream?n=N`` (chunked)
    bodies of N bytes; ``/close`` a body ended by closing; ``/trailers`` a
    chunked body with a ``grpc-status`` trailer; ``/ws`` upgrades and echoes.
    """

    def __init__(self) -> None:
        self.seen = Seen()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Upstream:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    line, headers = await read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target, _version = line.split(" ", 2)
                self.seen.requests.append((method, target, {k.lower(): v for k, v in headers}))
                if not await self._respond(method, target, headers, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, method: str, target: str, headers: list[tuple[str, str]],
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        url = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if (hget(headers, "expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        sink: list[bytes] = []
        n = await read_body(reader, headers, sink if path == "/echo" else None)
        self.seen.body_bytes += n

        def send(status: int, body: bytes, extra: str = "") -> None:
            head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
            writer.write(head.encode() + (b"" if method == "HEAD" else body))

        if path == "/hello":
            send(200, b"hello")
        elif path == "/echo":
            send(200, b"".join(sink))
        elif path == "/count":
            send(200, str(n).encode())
        elif path == "/headers":
            send(200, json.dumps(headers).encode(), "content-type: application/json\r\n")
        elif path.startswith("/grpc-status/"):  # a trailers-only gRPC answer's head
            send(200, b"", f"grpc-status: {path.rsplit('/', 1)[1]}\r\n")
        elif path.startswith("/status/"):
            send(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/slow":
            await asyncio.sleep(int(q.get("ms", "100")) / 1000)
            send(200, b"slow")
        elif path == "/length":
            total = int(q["n"])
            writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n".encode())
            await _stream(writer, total, chunked=False)
        elif path == "/stream":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            await _stream(writer, int(q["n"]), chunked=True)
            writer.write(b"0\r\n\r\n")
        elif path == "/trailers":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                         b"trailer: grpc-status\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 2\r\n\r\n")
        elif path == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-close body")
            await writer.drain()
            return False
        elif path == "/ws":
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                         b"connection: upgrade\r\n\r\n")
            await writer.drain()
            while data := await reader.read(65536):
                writer.write(data.upper())
                await writer.drain()
            return False
        else:
            send(404, b"not found")
        await writer.drain()
        return (hget(headers, "connection") or "").lower() != "close"


async def _stream(writer: asyncio.StreamWriter, total: int, chunked: bool) -> None:
    block = b"x" * 65536
    left = total
    while left:
        piece = block[: min(left, len(block))]
        writer.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
        left -= len(piece)
        await writer.drain()


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return hget(self.headers, name)


async def read_response(reader: asyncio.StreamReader, head_only: bool = False) -> Response:
    """One response, skipping interim (1xx other than 101) ones."""
    while True:
        line, headers = await read_head(reader)
        status = int(line.split(" ")[1])
        if status >= 200 or status == 101:
            break
    if head_only or status in (101, 204, 304):
        return Response(status, headers, b"")
    sink: list[bytes] = []
    trailers: list[tuple[str, str]] = []
    await read_body(reader, headers, sink, until_close=True, trailers=trailers)
    return Response(status, headers, b"".join(sink), trailers)


class Client:
    """One keep-alive client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, addr: tuple[str, int]) -> Client:
        r, w = await asyncio.open_connection(addr[0], addr[1], limit=1 << 20)
        return cls(r, w)

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                      body: bytes = b"", version: str = "1.1") -> Response:
        h = {"host": "app.test"} | (headers or {})
        if body and "transfer-encoding" not in h:
            h["content-length"] = str(len(body))
        head = f"{method} {target} HTTP/{version}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        return await read_response(self.reader, head_only=method == "HEAD")

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
