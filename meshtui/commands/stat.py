"""meshtui stat: golden metrics per resource."""

from __future__ import annotations

import argparse

from meshtui.commands._common import add_resource, not_built

HELP = "golden metrics (success rate, rps, latency, TCP) per namespace, deployment or pod"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p)
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("--from", dest="from_", metavar="RESOURCE", help="only traffic from this")
    p.add_argument("--from-namespace", metavar="NS", help="namespace of --from")
    p.add_argument("--to", metavar="RESOURCE", help="only traffic to this resource")
    p.add_argument("--to-namespace", metavar="NS", help="namespace of --to")
    p.add_argument("-t", "--time-window", default="1m", help="window: 10s to 15m (default 1m)")
    p.add_argument(
        "-o", "--output", choices=("table", "wide", "json"), help="print once in this format"
    )
    p.add_argument("-w", "--watch", action="store_true", help="live table even when piped")
    p.add_argument("--interval", type=float, default=1.0, help="refresh seconds (default 1)")


def run(args: argparse.Namespace) -> int:
    return not_built("stat")
