"""The admin port over a real loopback socket: /ready, /live, /metrics, and the rest."""

from __future__ import annotations

import asyncio
import socket

import pytest

from meshtui.errors import RuntimeFailure
from meshtui.proxy.admin import start_admin
from meshtui.proxy.grpc_service import start_grpc
from meshtui.proxy.telemetry import Identity, Telemetry

IDENT = Identity("emojivoto", "web", "web-0")


async def fetch(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def test_ready_follows_the_callback_and_live_always_answers() -> None:
    state = {"ready": False}
    admin = await start_admin(Telemetry(IDENT), "127.0.0.1", 0, lambda: state["ready"])
    try:
        assert (await fetch(admin.port, get("/ready")))[0] == 503
        assert (await fetch(admin.port, get("/live")))[0] == 200
        state["ready"] = True
        status, headers, body = await fetch(admin.port, get("/ready"))
        assert status == 200 and int(headers["content-length"]) == len(body)
    finally:
        admin.close()
        await admin.wait_closed()


async def test_a_failing_readiness_check_is_not_ready() -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    admin = await start_admin(Telemetry(IDENT), "127.0.0.1", 0, broken)
    try:
        assert (await fetch(admin.port, get("/ready")))[0] == 503
        assert (await fetch(admin.port, get("/live")))[0] == 200  # still serving
    finally:
        admin.close()


async def test_other_paths_methods_and_garbage() -> None:
    admin = await start_admin(Telemetry(IDENT), "127.0.0.1", 0, lambda: True)
    try:
        assert (await fetch(admin.port, get("/nope")))[0] == 404
        assert (await fetch(admin.port, get("/metrics", "POST")))[0] == 405
        assert (await fetch(admin.port, b"\x16\x03\x01 hello\r\n\r\n"))[0] == 400
        status, headers, body = await fetch(admin.port, get("/metrics?x=1", "HEAD"))
        assert status == 200 and body == b"" and int(headers["content-length"]) > 0
        assert headers["content-type"].startswith("text/plain")
    finally:
        admin.close()


async def test_oversized_head_gets_closed_and_the_server_keeps_serving() -> None:
    admin = await start_admin(Telemetry(IDENT), "127.0.0.1", 0, lambda: True)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
        writer.write(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert (await fetch(admin.port, get("/live")))[0] == 200
    finally:
        admin.close()


@pytest.mark.parametrize("what", ["admin", "grpc"])
async def test_busy_port_is_a_one_line_runtime_failure(what: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RuntimeFailure) as e:
            if what == "admin":
                await start_admin(Telemetry(IDENT), "127.0.0.1", port, lambda: True)
            else:
                await start_grpc(Telemetry(IDENT), "127.0.0.1", port)
    assert "\n" not in str(e.value) and str(port) in str(e.value)

async def test_a_client_that_sends_nothing_is_cut_off() -> None:
    admin = await start_admin(Telemetry(IDENT), "127.0.0.1", 0, lambda: True)
    admin.HEAD_TIMEOUT = 0.2
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
    finally:
        admin.close()


_LAZY_PROBE = """
import asyncio, sys, urllib.request
from meshtui.proxy.config import ProxyConfig
from meshtui.model.inventory import Address
from meshtui.proxy.server import ProxyServer

async def main():
    any_ = Address("127.0.0.1", 0)
    server = ProxyServer(ProxyConfig(inbound=any_, outbound=any_, app=any_, tap=any_,
                                     admin=any_, pod="p", namespace="n", deployment="d"))
    await server.start()
    print("prometheus_client" in sys.modules)
    port = server.admin_address[1]
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())
    print("prometheus_client" in sys.modules, b"tcp_open_total" in body)
    await server.stop()

asyncio.run(main())
"""


def test_prometheus_client_is_loaded_at_the_first_scrape_only() -> None:
    """A proxy nobody scrapes keeps prometheus-client (about 4.5 MiB) out of memory."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LAZY_PROBE], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True", "True"]
