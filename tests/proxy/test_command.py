"""``meshtui proxy`` as a process: options and environment, one-line failures,
graceful stop, and 100 MB bodies through it with flat memory."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from grpckit import SERVICE, GrpcApp, channel
from proxykit import Client, Upstream, read_head

CMD = [sys.executable, "-m", "meshtui", "proxy"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args", [
    ["--inbound", "nowhere"],
    ["--app", "127.0.0.1:99999"],
    ["--header-timeout", "-3"],
    ["--max-in-flight", "many"],
    ["--max-connections", "0"],
    ["--opaque-idle-timeout", "forever"],
    ["--min-body-rate", "\u0661"],  # a digit, but not an ASCII one
    ["--inventory", "/nonexistent/inventory.yaml"],
    ["--redact", "x tenant"],
    ["--bogus"],
])
def test_bad_options_exit_2_with_one_line(args: list[str]) -> None:
    p = run_cli(*args)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_an_app_that_is_the_proxy_itself_exits_2() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = run_cli("--inbound", f"127.0.0.1:{port}", "--outbound", "127.0.0.1:0",
                "--app", f"localhost:{port}", "--tap", "off", "--admin", "off")
    assert p.returncode == 2
    [line] = p.stderr.strip().splitlines()
    assert f"--app localhost:{port} is this proxy's own listener" in line


def test_taken_port_exits_1_naming_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = run_cli("--inbound", f"127.0.0.1:{port}", "--outbound", "127.0.0.1:0",
                    "--tap", "off", "--admin", "off")
    assert p.returncode == 1
    [line] = p.stderr.strip().splitlines()
    assert f"127.0.0.1:{port}" in line and "in use" in line


@contextmanager
def proxy_process(*args: str, env: dict[str, str] | None = None, nofile: int | None = None
                  ) -> Iterator[tuple[subprocess.Popen[str], dict[str, tuple[str, int]]]]:
    """Starts ``meshtui proxy`` (with ``nofile`` as its hard and soft limit on open
    files, if given); yields it and the addresses it announced."""
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    p = subprocess.Popen([*CMD, *args], stderr=subprocess.PIPE, text=True,
                         env={**os.environ, **(env or {})},
                         preexec_fn=limit if nofile is not None else None)
    try:
        assert p.stderr is not None
        seen = []
        for _ in range(20):  # the announcement, after whatever gRPC's core logs first
            line = p.stderr.readline()
            seen.append(line)
            if line.startswith("proxy ") or not line:
                break
        found = dict((k, (h, int(port))) for k, h, port in
                     re.findall(r"(\w+) ([\d.]+):(\d+)", line))
        assert "inbound" in found, seen
        yield p, found
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(5)
        if p.stderr is not None:
            p.stderr.close()


def test_options_from_the_environment_and_a_graceful_sigterm() -> None:
    env = {"MESHTUI_INBOUND_ADDR": "127.0.0.1:0", "MESHTUI_OUTBOUND_ADDR": "127.0.0.1:0",
           "MESHTUI_TAP_ADDR": "off", "MESHTUI_ADMIN_ADDR": "off",
           "MESHTUI_POD_NAME": "web-abc", "MESHTUI_POD_NAMESPACE": "emojivoto",
           "MESHTUI_APP_ADDR": "127.0.0.1:9"}
    with proxy_process(env=env) as (p, addrs):
        assert set(addrs) == {"inbound", "outbound"}
        with socket.create_connection(addrs["inbound"], timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 502")  # port 9: nothing listens
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        assert time.monotonic() - t0 < 3


async def test_idle_connections_at_a_low_descriptor_limit_leave_room_for_requests() -> None:
    """A proxy allowed 256 open files, and 300 keep-alive clients that each made a
    request and stayed (each holding its connection and a kept upstream one): every
    request is answered, the idle ones making room (counted), where before the
    descriptors ran out and later clients were never answered, silently."""
    up = await Upstream().start()
    try:
        with proxy_process("--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0",
                           "--tap", "off", "--admin", "127.0.0.1:0",
                           "--app", f"127.0.0.1:{up.port}", nofile=256) as (_p, addrs):
            idle = []
            for _ in range(300):
                c = await Client.connect(addrs["inbound"])
                r = await asyncio.wait_for(c.request("GET", "/hello"), 5)
                assert (r.status, r.body) == (200, b"hello")
                idle.append(c)
            host, port = addrs["admin"]
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            text = (await reader.read()).decode()
            writer.close()
            room = re.search(r'meshtui_connection_failures_total\{direction="inbound",'
                             r'reason="idle_closed_for_room"\} (\d+)', text)
            assert room is not None and int(room.group(1)) >= 300 - 48
            for c in idle:
                await c.close()
    finally:
        await up.close()


@asynccontextmanager
async def peak_rss(pid: int) -> AsyncIterator[list[int]]:
    """Samples a process's resident KiB while the block runs: [at the start, the peak]."""
    rss = [rss_kib(pid)] * 2

    async def sample() -> None:
        while True:
            rss[1] = max(rss[1], rss_kib(pid))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        yield rss
    finally:
        sampler.cancel()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
async def test_100_mb_each_way_with_flat_proxy_memory() -> None:
    app = await Upstream().start()
    total = 100 * 1024 * 1024
    with proxy_process("--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0", "--tap", "off",
                       "--admin", "off", "--app", f"127.0.0.1:{app.port}") as (p, addrs):
        async with peak_rss(p.pid) as rss:
            r, w = await asyncio.open_connection(*addrs["inbound"])
            # Upload: the app counts what arrives.
            w.write(f"POST /count HTTP/1.1\r\nhost: a\r\ncontent-length: {total}\r\n\r\n".encode())
            block = b"u" * (1 << 20)
            for _ in range(100):
                w.write(block)
                await w.drain()
            _line, headers = await read_head(r)
            body = await r.readexactly(int(dict(headers)["content-length"]))
            assert body == str(total).encode()
            # Download, chunked from the app.
            w.write(f"GET /stream?n={total} HTTP/1.1\r\nhost: a\r\n\r\n".encode())
            _line, headers = await read_head(r)
            got = 0
            while got < total:
                size = int((await r.readuntil(b"\r\n")).strip(), 16)
                while size:
                    piece = await r.read(min(size, 1 << 20))
                    size -= len(piece)
                    got += len(piece)
                await r.readexactly(2)
            assert await r.readexactly(5) == b"0\r\n\r\n"
            assert got == total
            w.close()
        await app.close()
    base, peak = rss
    grew_mib = (peak - base) / 1024
    print(f"proxy RSS {base / 1024:.1f} MiB at start, {peak / 1024:.1f} MiB at peak")
    # 200 MB went through; the proxy held a few socket buffers' worth at most.
    assert grew_mib < 16, f"proxy RSS grew by {grew_mib:.1f} MiB (from {base / 1024:.1f} MiB)"


async def test_grpc_call_of_100_mb_each_way_with_flat_proxy_memory() -> None:
    """HTTP/2 frames pass as they come: a bidi-streaming gRPC call echoing 100
    messages of 1 MiB keeps the proxy as flat as the HTTP/1 bodies above."""
    app = await GrpcApp().start()
    block = bytes(range(256)) * 4096
    with proxy_process("--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0", "--tap", "off",
                       "--admin", "off", "--app", f"127.0.0.1:{app.port}") as (p, addrs):
        async with peak_rss(p.pid) as rss, channel(addrs["inbound"]) as ch:
            call = ch.stream_stream(f"/{SERVICE}/Bidi")(timeout=120)

            async def send() -> None:
                for _ in range(100):
                    await call.write(block)
                await call.done_writing()

            sender = asyncio.create_task(send())
            got = 0
            while isinstance(m := await call.read(), bytes):
                assert m == block
                got += len(m)
            await sender
            assert got == 100 * len(block)
            assert (await call.code()).name == "OK"
        await app.close()
    base, peak = rss
    print(f"gRPC: proxy RSS {base / 1024:.1f} MiB at start, {peak / 1024:.1f} MiB at peak")
    grew_mib = (peak - base) / 1024
    assert grew_mib < 16, f"proxy RSS grew by {grew_mib:.1f} MiB (from {base / 1024:.1f} MiB)"


def test_a_proxy_without_identity_does_not_load_the_certificate_libraries() -> None:
    """cryptography and grpc's certificate side cost a proxy about 20 MB resident:
    they are loaded only when --identity asks for them."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys, meshtui.commands.proxy, meshtui.proxy.server, "
         "meshtui.proxy.prom_metrics, meshtui.proxy.grpc_service; "
         "print(sorted(m for m in ('cryptography', 'meshtui.identity.workload') "
         "if m in sys.modules))"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"
