"""kube-dns for the demo: a real DNS server over UDP and TCP, and a resolver.

It answers A queries for the demo's service names
(``emoji-svc.emojivoto.svc.cluster.local``) from a table it is given, with
NXDOMAIN for anything else. Over TCP every message carries a two-byte length
prefix (RFC 1035 §4.2.2); the demo's pods query over TCP through their proxies
so that kube-dns shows TCP figures, and over UDP, which a mesh does not proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import struct
from collections.abc import Awaitable, Callable, Mapping

QTYPE_A = 1
QCLASS_IN = 1
RCODE_OK = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4


class DnsError(Exception):
    pass


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise DnsError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def decode_name(msg: bytes, pos: int) -> tuple[str, int]:
    """Reads a (possibly compressed) name at ``pos``; returns it and the next position."""
    labels = []
    jumped_end = None
    for _ in range(128):  # a bound against pointer loops
        if pos >= len(msg):
            raise DnsError("name runs past the message")
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise DnsError("truncated pointer")
            if jumped_end is None:
                jumped_end = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        labels.append(msg[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    else:
        raise DnsError("name too long or looping")
    return ".".join(labels).lower(), (jumped_end if jumped_end is not None else pos)


def build_query(name: str, qid: int | None = None) -> bytes:
    qid = random.getrandbits(16) if qid is None else qid
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD set
    return header + encode_name(name) + struct.pack("!HH", QTYPE_A, QCLASS_IN)


def answer(query: bytes, records: Mapping[str, str | list[str]], ttl: int = 30) -> bytes:
    """The response to one query message (every address a name has, as A records)."""
    if len(query) < 12:
        raise DnsError("message shorter than a header")
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        return struct.pack("!HHHHHH", qid, 0x8180 | RCODE_FORMERR, 0, 0, 0, 0)
    name, pos = decode_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[pos : pos + 4])
    question = query[12 : pos + 4]
    rd = flags & 0x0100
    found = records.get(name)
    if found is None:
        return struct.pack("!HHHHHH", qid, 0x8400 | rd | RCODE_NXDOMAIN, 1, 0, 0, 0) + question
    if qtype != QTYPE_A or qclass != QCLASS_IN:
        return struct.pack("!HHHHHH", qid, 0x8400 | rd | RCODE_OK, 1, 0, 0, 0) + question
    ips = [found] if isinstance(found, str) else found
    rrs = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, QCLASS_IN, ttl, 4)
                   + ipaddress.IPv4Address(ip).packed for ip in ips)
    return (struct.pack("!HHHHHH", qid, 0x8400 | rd | RCODE_OK, 1, len(ips), 0, 0)
            + question + rrs)


def parse_answer(msg: bytes) -> tuple[int, list[str]]:
    """(rcode, A-record addresses) of a response."""
    if len(msg) < 12:
        raise DnsError("short response")
    _qid, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    pos = 12
    for _ in range(qd):
        _, pos = decode_name(msg, pos)
        pos += 4
    ips = []
    for _ in range(an):
        _, pos = decode_name(msg, pos)
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
        pos += 10
        if rtype == QTYPE_A and rdlen == 4:
            ips.append(str(ipaddress.IPv4Address(msg[pos : pos + 4])))
        pos += rdlen
    return flags & 0x000F, ips


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, records: Mapping[str, str | list[str]]) -> None:
        self.records = records
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(DnsError, struct.error, UnicodeError):
            assert self.transport is not None
            self.transport.sendto(answer(data, self.records), addr)


TcpFallback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve_dns(records: Mapping[str, str | list[str]], host: str, port: int,
                    http: TcpFallback | None = None
                    ) -> tuple[asyncio.Server, asyncio.DatagramTransport]:
    """Serves ``records`` (name → IPv4) over TCP and UDP at host:port.

    With ``http``, a TCP connection that opens with an HTTP method is handed to
    it instead: kube-dns's health endpoint then shares the DNS port, so one
    proxy ``--app`` address fronts both in the explicit-mode demo.
    """

    async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if http is not None:
            try:
                first = await reader.readexactly(4)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            # A DNS message starts with a 2-byte length; an HTTP request with a
            # method in capitals. Put the bytes back for whoever reads them.
            reader._buffer[0:0] = first  # type: ignore[attr-defined]
            if first[:3].isalpha() and first[:3].isupper():
                await http(reader, writer)
                return
        try:
            while True:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
                reply = answer(await reader.readexactly(n), records)
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, DnsError, struct.error):
            pass
        finally:
            writer.close()

    loop = asyncio.get_running_loop()
    tcp = await asyncio.start_server(on_tcp, host, port, reuse_address=True)
    udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(records), local_addr=(host, port))
    return tcp, udp  # type: ignore[return-value]


async def query_tcp(addr: tuple[str, int], names: list[str], timeout: float = 2.0
                    ) -> list[tuple[int, list[str]]]:
    """Resolves ``names`` over one TCP connection (as resolvers do after truncation)."""

    async def go() -> list[tuple[int, list[str]]]:
        reader, writer = await asyncio.open_connection(*addr)
        try:
            out = []
            for name in names:
                q = build_query(name)
                writer.write(struct.pack("!H", len(q)) + q)
                await writer.drain()
                (n,) = struct.unpack("!H", await reader.readexactly(2))
                out.append(parse_answer(await reader.readexactly(n)))
            return out
        finally:
            writer.close()

    return await asyncio.wait_for(go(), timeout)


async def query_udp(addr: tuple[str, int], name: str, timeout: float = 1.0
                    ) -> tuple[int, list[str]]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class _Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, _addr: tuple[str, int]) -> None:
            if not fut.done():
                fut.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=addr)
    try:
        transport.sendto(build_query(name))
        return parse_answer(await asyncio.wait_for(fut, timeout))
    finally:
        transport.close()
