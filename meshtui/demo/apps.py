"""Runs one demo app as its own process: ``python -m meshtui.demo.apps NAME``.

Configuration comes from the environment, as a pod's would:
``MESHTUI_APP_LISTEN`` (HOST:PORT to serve HTTP on), ``HTTP_PROXY`` (send calls
through this proxy; absent: connect directly, resolving names with kube-dns at
``MESHTUI_DEMO_DNS``), ``MESHTUI_DEMO_DNS_TCP`` (where to send the periodic DNS
queries over TCP), for kube-dns ``MESHTUI_DEMO_DNS_RECORDS`` (JSON name → IPv4;
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

from meshtui.demo import dns
from meshtui.demo.emojivoto import (
    VoteBot,
    emoji_handler,
    kube_dns_health_handler,
    voting_handler,
    web_handler,
)
from meshtui.demo.httpkit import Client, connection_handler, serve

APPS = ("web", "emoji", "voting", "vote-bot", "kube-dns", "idle")


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


def _client() -> Client:
    proxy = os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy")
    if proxy:
        return Client(proxy=proxy.split("://", 1)[-1].rstrip("/"))
    dns_addr = os.environ.get("MESHTUI_DEMO_DNS")
    return Client(resolve=_resolver(_addr(dns_addr)) if dns_addr else None)


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
    client = _client()
    if name == "emoji":
        servers.append(await serve(emoji_handler(), host, port))  # type: ignore[arg-type]
    elif name == "voting":
        servers.append(await serve(voting_handler(), host, port))  # type: ignore[arg-type]
    elif name == "web":
        handler = web_handler(client, os.environ.get("EMOJI_URL", "http://emoji-svc.emojivoto:8080"),
                              os.environ.get("VOTING_URL", "http://voting-svc.emojivoto:8080"))
        servers.append(await serve(handler, host, port))  # type: ignore[arg-type]
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
    await client.close()


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in APPS:
        print(f"usage: python -m meshtui.demo.apps {{{'|'.join(APPS)}}}", file=sys.stderr)
        raise SystemExit(2)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run_app(sys.argv[1]))


if __name__ == "__main__":
    main()
