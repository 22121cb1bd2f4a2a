"""An opaque tunnel to a server that talks as soon as it is connected (HTTP/2's
SETTINGS, an SMTP banner): the server's first bytes must reach the client even
when they arrive before the tunnel is wired up."""

from __future__ import annotations

import asyncio

from proxymesh import proxy_config

from meshtui.proxy.server import ProxyServer


async def test_early_server_bytes_pass_through_the_tunnel() -> None:
    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SERVER-HELLO\n")  # before reading anything
        await writer.drain()
        data = await reader.readexactly(6)
        writer.write(b"echo:" + data)
        await writer.drain()
        writer.close()

    app = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = app.sockets[0].getsockname()[1]
    proxy = ProxyServer(proxy_config(port))
    await proxy.start()
    try:
        assert proxy.inbound_address is not None
        # Many rounds: the server's bytes race the tunnel's set-up.
        for _ in range(40):
            reader, writer = await asyncio.open_connection(*proxy.inbound_address)
            writer.write(b"\x00\x01\x02\x03\x04\x05")  # not HTTP: tunnelled at once
            await writer.drain()
            hello = await asyncio.wait_for(reader.readline(), 2)
            echo = await asyncio.wait_for(reader.readexactly(11), 2)
            writer.close()
            assert hello == b"SERVER-HELLO\n"
            assert echo == b"echo:\x00\x01\x02\x03\x04\x05"
    finally:
        await proxy.stop(grace=0.2)
        app.close()
