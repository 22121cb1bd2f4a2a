"""meshtui proxy: the sidecar."""

from __future__ import annotations

import argparse

HELP = "run the sidecar proxy of one pod"
DESCRIPTION = """\
Runs the sidecar proxy of one pod: HTTP/1.1 and opaque TCP on the inbound and
outbound listeners, telemetry and tap over gRPC on the tap port, /metrics,
/ready and /live on the admin port. Every option can also come from the
environment variable named in its help, as Kubernetes' Downward API gives it.

With iptables (meshtui proxy-init) connections are redirected here and their
original destination is read from the socket. Without it, point the app's
HTTP_PROXY at the outbound listener; with --inventory the proxy routes calls to
services and pods it names through the peer pod's proxy.

SIGTERM or SIGINT stops it: requests under way finish first (5 s at most)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from meshtui.proxy.config import add_arguments as add

    add(p)


def run(args: argparse.Namespace) -> int:
    from meshtui.proxy.config import from_args
    from meshtui.proxy.server import run as run_proxy

    return run_proxy(from_args(args))
