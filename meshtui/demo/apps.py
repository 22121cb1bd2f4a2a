"""Runs one demo app as its own process: ``python -m meshtui.demo.apps NAME``.

Configuration comes from the environment, as a pod's would:
``MESHTUI_APP_LISTEN`` (HOST:PORT to serve on: gRPC for emoji and voting,
HTTP for the others), ``HTTP_PROXY`` (send calls
through this proxy; absent: connect directly, resolving names with kube-dns at
``MESHTUI_DEMO_DNS``), ``MESHTUI_DEMO_DNS_TCP`` (where to send the periodic DNS
queries over TCP), for web ``EMOJI_ADDR``, ``VOTING_ADDR`` (services' NAME:PORT) and
``MESHTUI_DEMO_CHANNELS`` (gRPC channels per service through the proxy), for
kube-dns ``MESHTUI_DEMO_DNS_RECORDS`` (JSON name → IPv4;
DNS over UDP and TCP, and HTTP health, all on the app's port); for vote-bot ``MESHTUI_DEMO_RPS``
and ``MESHTUI_DEMO_REPORT`` (a file it writes its sent counts to).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import grpc

from meshtui.demo import dns
from meshtui.demo.emojivoto import (
    VoteBot,
    kube_dns_health_handler,
    start_emoji,
    start_voting,
    web_handler,
)
from meshtui.demo.emojivoto_grpc import Backends
from meshtui.demo.httpkit import Client, connection_handler, serve

APPS = ("web", "emoji", "voting", "vote-bot", "kube-dns", "idle")
GRPC_APPS = ("web", "emoji", "voting")


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _resolver(dns_addr: tuple[str, int]):  # type: ignore[no-untyped-def]
    cache: dict[str, tuple[float, str]] = {}

    async def resolve(name: str) -> str:
        hit = cache.get(name)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        rcode, ips = await dns.query_udp(dns_addr, name)
        if rcode or not ips:
            raise OSError(f"cannot resolve {name} (rcode {rcode})")
        ip = random.choice(ips)  # every replica gets its share, as a Service would spread it
        cache[name] = (time.monotonic() + 1, ip)
        return ip

    return resolve


def _proxy() -> str | None:
    """HTTP_PROXY's HOST:PORT, if set."""
    proxy = os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy")
    return proxy.split("://", 1)[-1].rstrip("/") if proxy else None


def _client() -> Client:
    proxy = _proxy()
    if proxy:
        return Client(proxy=proxy)
    dns_addr = os.environ.get("MESHTUI_DEMO_DNS")
    return Client(resolve=_resolver(_addr(dns_addr)) if dns_addr else None)


def _backends() -> Backends:
    """web's gRPC channels, configured as its HTTP client is: the proxy, or kube-dns."""
    proxy = _proxy()
    dns_addr = os.environ.get("MESHTUI_DEMO_DNS")
    return Backends(os.environ.get("EMOJI_ADDR", "emoji-svc.emojivoto:8080"),
                    os.environ.get("VOTING_ADDR", "voting-svc.emojivoto:8080"), proxy=proxy,
                    resolve=_resolver(_addr(dns_addr)) if dns_addr and not proxy else None,
                    channels=int(os.environ.get("MESHTUI_DEMO_CHANNELS", "1")))


async def _dns_tcp_loop(target: tuple[str, int], names: list[str], every_s: float) -> None:
    """Queries kube-dns over TCP now and then, as resolvers do for large answers."""
    while True:
        await asyncio.sleep(every_s * random.uniform(0.5, 1.5))
        with contextlib.suppress(OSError, TimeoutError, dns.DnsError, asyncio.IncompleteReadError):
            await dns.query_tcp(target, random.sample(names, k=min(3, len(names))))


async def run_app(name: str) -> None:
    listen = os.environ.get("MESHTUI_APP_LISTEN", "127.0.0.1:8080")
    host, port = _addr(listen)
    tasks: list[asyncio.Task[None]] = []
    servers: list[asyncio.Server] = []
    transports: list[asyncio.BaseTransport] = []
    grpc_servers: list[grpc.aio.Server] = []
    backends: Backends | None = None
    client = _client()
    if name == "emoji":
        grpc_servers.append((await start_emoji(listen))[0])
    elif name == "voting":
        grpc_servers.append((await start_voting(listen))[0])
    elif name == "web":
        backends = _backends()
        servers.append(await serve(web_handler(backends), host, port))  # type: ignore[arg-type]
    elif name == "kube-dns":
        records = json.loads(os.environ.get("MESHTUI_DEMO_DNS_RECORDS", "{}"))
        # DNS and the HTTP health endpoint share the app's port (see serve_dns).
        tcp, udp = await dns.serve_dns(records, host, port,
                                       http=connection_handler(kube_dns_health_handler()))  # type: ignore[arg-type]
        transports.append(udp)
        servers.append(tcp)
    elif name == "vote-bot":
        report = os.environ.get("MESHTUI_DEMO_REPORT")
        extra = [(u, 1.0) for u in os.environ.get("MESHTUI_DEMO_EXTRA_URLS", "").split() if u]
        bot = VoteBot(client, os.environ.get("WEB_URL", "http://web-svc.emojivoto:80"),
                      rps=float(os.environ.get("MESHTUI_DEMO_RPS", "20")),
                      report_path=Path(report) if report else None, extra=extra)
        tasks.append(asyncio.create_task(bot.run()))
    elif name == "idle":  # a pod that serves a page and nothing else (the unmeshed one)
        servers.append(await serve(kube_dns_health_handler(), host, port))  # type: ignore[arg-type]
    else:
        raise SystemExit(f"unknown demo app {name!r}; one of {', '.join(APPS)}")
    tcp_target = os.environ.get("MESHTUI_DEMO_DNS_TCP")
    names = json.loads(os.environ.get("MESHTUI_DEMO_DNS_NAMES", "[]"))
    if tcp_target and names:
        tasks.append(asyncio.create_task(_dns_tcp_loop(_addr(tcp_target), names, 2.0)))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    for s in servers:
        s.close()
    for tr in transports:
        tr.close()
    for g in grpc_servers:
        await g.stop(0.5)
    if backends is not None:
        await backends.close()
    await client.close()


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in APPS:
        print(f"usage: python -m meshtui.demo.apps {{{'|'.join(APPS)}}}", file=sys.stderr)
        raise SystemExit(2)
    # The gRPC apps (web, emoji, voting) keep asyncio's own loop: grpc.aio's
    # poller is written for it.
    if sys.argv[1] not in GRPC_APPS:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    asyncio.run(run_app(sys.argv[1]))


if __name__ == "__main__":
    main()
