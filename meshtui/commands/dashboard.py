"""meshtui dashboard (also `meshtui` alone): the whole mesh at a glance."""

from __future__ import annotations

import argparse

from meshtui.commands._common import (
    add_source,
    add_time_range,
    open_source,
    time_range,
    use_redact,
)

HELP = "full-screen dashboard: namespaces, deployments, pods, charts, tap and top"
DESCRIPTION = """\
The whole mesh at a glance: every namespace with how much of it is meshed and
its live success rate, RPS and latency, under the controller's and proxies'
health. Enter drills into deployments and pods, Escape goes back; on any row
c opens its charts (the last 15 minutes), t its live requests, o its busiest
routes. ? lists every key; Ctrl+P finds any resource.

With --web it serves the same dashboard to a browser (one app per tab),
on 127.0.0.1 unless --host says otherwise.

With --prometheus URL (or MESHTUI_PROMETHEUS) the figures and charts come
from that Prometheus (Linkerd viz's queries), tap from the controller; --span
and --since/--until set what the charts cover.

examples:
  meshtui
  meshtui dashboard --prometheus http://127.0.0.1:9090 --span 6h
  meshtui dashboard --prometheus http://127.0.0.1:9090 --since 09:00 --until 12:00
  meshtui --server 10.0.0.5:8086 dashboard
  meshtui dashboard --web --port 8000"""

PREFLIGHT_S = 3.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web", action="store_true", help="serve it to a browser instead")
    p.add_argument("--port", type=int, default=8000, help="port for --web (default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address for --web to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--interval", type=float, default=1.0, help="refresh seconds (default 1)")
    p.add_argument("--span", metavar="DURATION",
                   help="what the charts cover: 15m (default) up to what the source keeps "
                   "(1h, 6h over Prometheus); z steps through 15m, 1h and 6h")
    add_time_range(p, "charts")
    add_source(p)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import os
    import sys

    from meshtui.errors import UsageError

    open_source(args)  # checks --server and --prometheus before anything starts
    use_redact(args)  # MESHTUI_REDACT: the dashboard's tap views redact those names too
    span, until = time_range(args, args.span, flag="--span", default="15m")
    if not 0.1 <= args.interval <= 60:
        raise UsageError("--interval must be between 0.1 and 60 seconds")
    if args.web and not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (1-65535)")
    if args.web:
        _check_port(args.host, args.port)
    elif not (sys.stdout.isatty() and sys.stdin.isatty()) and "TEXTUAL_DRIVER" not in os.environ:
        # (textual-serve runs each browser tab's dashboard on pipes, with its own driver.)
        raise UsageError("the dashboard needs a terminal (or --web for a browser); for "
                         "plain output use `meshtui stat`, `tap` or `top` with -o")
    asyncio.run(_preflight(args))
    if args.web:
        return _serve_web(args, args.host, args.port, args.interval)
    from meshtui.client.queries import StatQuery
    from meshtui.tui.app import MeshApp, run_app
    from meshtui.tui.chart_data import ChartRange

    return run_app(MeshApp(open_source(args), StatQuery("namespace"), dashboard=True,
                           interval=args.interval, chart_range=ChartRange(span, until)))


async def _preflight(args: argparse.Namespace) -> None:
    """Fails with the address (and, for the controller, how to start a demo) when the
    source does not answer. A source of its own: grpc.aio objects belong to their loop."""
    source = open_source(args)
    try:
        await source.ready(PREFLIGHT_S)
    finally:
        await source.close()


def _check_port(host: str, port: int) -> None:
    """Fails at once, before anything starts, when the address cannot be listened on."""
    import socket

    from meshtui.errors import RuntimeFailure

    try:
        with socket.socket() as s:
            s.bind((host, port))
    except OSError as e:
        raise RuntimeFailure(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _serve_web(args: argparse.Namespace, host: str, port: int, interval: float) -> int:
    """textual-serve: each browser tab gets its own dashboard process, fed through a socket."""
    import shlex
    import sys

    from textual_serve.server import Server

    where = ["--prometheus", args.prometheus] if args.prometheus else []
    for flag, value in (("--span", args.span), ("--since", args.since), ("--until", args.until)):
        if value is not None:
            where.append(f"{flag}={value}")
    command = " ".join(shlex.quote(a) for a in (
        sys.executable, "-m", "meshtui", "--server", args.server, "dashboard",
        "--interval", f"{interval:g}", *where))
    Server(command, host=host, port=port,
           title=f"meshtui · {args.prometheus or args.server}").serve()
    return 0
