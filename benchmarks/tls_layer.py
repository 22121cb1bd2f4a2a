"""What a TLS layer costs one server per request, alone: CPU per small request and
response under wrk (keep-alive, 32 connections), plain TCP against TLS 1.3 through
uvloop's TLS layer and through OpenSSL reading and writing the socket itself.

The proxies' mutual TLS costs about 26 µs a request in each (README, "Identity");
this tells how much of it the TLS layer alone accounts for.

Run: .venv/bin/python benchmarks/tls_layer.py [--seconds 4] [--rounds 2]
(needs wrk and openssl: scripts/install-tools.sh)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n"
MODES = ("plain", "uvloop-tls", "socket-tls")


class App(asyncio.Protocol):
    """Answers each request head it reads (wrk sends one at a time per connection)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.t.write(RESPONSE * data.count(b"\r\n\r\n"))  # type: ignore[attr-defined]


class SocketTls:
    """TLS with OpenSSL on the socket (non-blocking): one call a record each way."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ctx: ssl.SSLContext,
                 sock: socket.socket, live: set[SocketTls]) -> None:
        self.loop, self.live, self.app = loop, live, App()
        self.s = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.fd = self.s.fileno()
        self.c: Any = None  # the C object under ssl.SSLSocket's Python methods
        live.add(self)
        loop.add_reader(self.fd, self._handshake)

    def _handshake(self) -> None:
        try:
            self.s.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (ssl.SSLError, OSError):
            self._close()
            return
        # Each Python frame over it is about a microsecond a record: called directly.
        self.c = getattr(self.s, "_sslobj", None) or self.s
        self.loop.remove_reader(self.fd)
        self.loop.add_reader(self.fd, self._read)
        self.app.connection_made(self)  # type: ignore[arg-type]

    def _read(self) -> None:
        try:
            data = self.c.read(65536)
            while self.c.pending():
                data += self.c.read(65536)
        except ssl.SSLWantReadError:
            return
        except (ssl.SSLError, OSError):
            data = b""
        if not data:
            self._close()
            return
        self.app.data_received(data)

    def write(self, data: bytes) -> None:
        self.c.write(data)  # small answers: the socket buffer takes them whole

    def _close(self) -> None:
        self.loop.remove_reader(self.fd)
        self.s.close()
        self.live.discard(self)


async def serve(mode: str, port: int, cert: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if mode == "plain":
        await loop.create_server(App, "127.0.0.1", port, backlog=1024)
    elif mode == "uvloop-tls":
        await loop.create_server(App, "127.0.0.1", port, ssl=ctx, backlog=1024)
    else:
        live: set[SocketTls] = set()
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(1024)
        ls.setblocking(False)

        def accept() -> None:
            while True:
                try:
                    s, _ = ls.accept()
                except BlockingIOError:
                    return
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                SocketTls(loop, ctx, s, live)

        loop.add_reader(ls.fileno(), accept)
    await asyncio.Event().wait()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def once(mode: str, seconds: float, cert: str, key: str) -> float:
    """µs of the server's CPU per request."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen([sys.executable, __file__, "--serve", mode, str(port), cert, key])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{mode} server did not start") from None
                time.sleep(0.05)
        url = f"{'http' if mode == 'plain' else 'https'}://127.0.0.1:{port}/"
        subprocess.run(["wrk", "-t1", "-c32", "-d1s", url], capture_output=True, check=True)
        c0 = cpu_s(srv.pid)
        out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds:g}s", url],
                             capture_output=True, text=True, check=True).stdout
        c1 = cpu_s(srv.pid)
    finally:
        srv.terminate()
        srv.wait()
    m = re.search(r"(\d+) requests in", out)
    if not m:
        raise RuntimeError(f"unreadable wrk output: {out[:200]}")
    return (c1 - c0) / int(m.group(1)) * 1e6


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        import uvloop

        uvloop.run(serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("openssl"):
        print("tls_layer: needs wrk and openssl (scripts/install-tools.sh)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="meshtui-tls-") as tmp:
        cert, key = f"{tmp}/c.pem", f"{tmp}/k.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=localhost"], capture_output=True, check=True)
        got: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(args.rounds):  # interleaved, so that a busy moment hits all
            for mode in MODES:
                got[mode].append(once(mode, args.seconds, cert, key))
    plain = statistics.median(got["plain"])
    print(f"server CPU per request, median of {args.rounds} (wrk -t1 -c32 keep-alive):")
    for mode in MODES:
        med = statistics.median(got[mode])
        print(f"  {mode:<11} {med:6.1f} µs  ({med - plain:+.1f} over plain; "
              f"runs {', '.join(f'{x:.1f}' for x in got[mode])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
