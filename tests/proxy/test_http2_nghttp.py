"""HTTP/2 stacks no one here wrote: nghttp2's client (nghttp), load generator (h2load)
and server (nghttpd), through a real proxy — and nghttp against grpcio's server.

Skipped when the binaries are missing (``scripts/install-tools.sh`` installs them).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from grpckit import GrpcApp
from proxymesh import Mesh, free_port, meshed

from meshtui.proxy.telemetry import Telemetry


def need(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                  else None)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: nghttp2-client, nghttp2-server)")
    return path


class Nghttpd:
    """nghttpd without TLS, serving a directory; ``port`` and ``close()`` as an app."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([need("nghttpd"), "--no-tls", "-d", str(root),
                                      str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    async def wait(self) -> Nghttpd:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                await asyncio.sleep(0.02)
        raise RuntimeError("nghttpd did not start")

    async def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def docroot(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "index.html").write_bytes(b"<p>hello</p>\n" * 10)
    with open(tmp_path / "big.bin", "wb") as f:
        f.write(bytes(range(256)) * (20 * 4096))  # 20 MiB
    yield tmp_path


@pytest.fixture
async def ngmesh(docroot: Path) -> AsyncIterator[Mesh[Nghttpd]]:
    need("nghttpd")
    async with meshed(await Nghttpd(docroot).wait()) as m:
        yield m


async def run(*argv: str, timeout: float = 30) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return out.decode("utf-8", "replace")


def responses(tel: Telemetry) -> dict[tuple[int, bool], int]:
    out: dict[tuple[int, bool], int] = {}
    for r in tel.routes():
        for key, st in r.responses.items():
            out[key] = out.get(key, 0) + st.count
    return out


async def test_h2load_through_the_proxy_to_nghttpd(ngmesh: Mesh[Nghttpd]) -> None:
    port = ngmesh.inbound[1]
    out = await run(need("h2load"), "-n", "600", "-c", "3", "-m", "10",
                    f"http://127.0.0.1:{port}/index.html")
    assert re.search(r"requests: 600 total, 600 started, 600 done, 600 succeeded", out), out
    assert re.search(r"status codes: 600 2xx", out), out
    tel = ngmesh.proxy.telemetry
    assert sum(r.requests for r in tel.routes()) == 600
    assert responses(tel) == {(200, True): 600}
    [route] = tel.routes()
    assert route.authority == f"127.0.0.1:{port}"
    assert tel.http2_errors == {}


async def test_nghttp_download_and_not_found_through_the_proxy(ngmesh: Mesh[Nghttpd]) -> None:
    """20 MiB with nghttp's 64 KiB windows: every WINDOW_UPDATE passes through."""
    port = ngmesh.inbound[1]
    tel = ngmesh.proxy.telemetry
    sub = tel.hub.subscribe()
    out = await run(need("nghttp"), "-n", "-s", f"http://127.0.0.1:{port}/big.bin",
                    f"http://127.0.0.1:{port}/missing")
    assert "/big.bin" in out and "/missing" in out, out
    assert responses(tel) == {(200, True): 1, (404, True): 1}
    batch = tel.hub.take_batch(sub)
    sizes = {e.response_end.response_bytes for e in batch.events if e.HasField("response_end")}
    assert 20 * 1024 * 1024 in sizes
    statuses = sorted(e.response_init.http_status for e in batch.events
                      if e.HasField("response_init"))
    assert statuses == [200, 404]


async def test_nghttp_calls_grpcio_through_the_proxy(tmp_path: Path) -> None:
    """A gRPC call written by hand (length-prefixed message, te: trailers) from nghttp:
    the status in grpcio's trailers reaches the client and the proxy's figures."""
    nghttp = need("nghttp")
    body = tmp_path / "req"
    body.write_bytes(b"\x00" + (2).to_bytes(4, "big") + b"14")  # Status: UNAVAILABLE
    async with meshed(await GrpcApp().start()) as m:
        out = await run(nghttp, "-v", "-d", str(body), "-H", "content-type: application/grpc",
                        "-H", "te: trailers", f"http://127.0.0.1:{m.inbound[1]}/t.Svc/Status")
        assert re.search(r"grpc-status: 14", out), out
        tel = m.proxy.telemetry
        [route] = tel.routes()
        assert {k: (v.count, v.grpc) for k, v in route.responses.items()} == {
            (200, False): (1, {14: 1})}
