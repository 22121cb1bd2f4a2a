"""Argument helpers several commands share (kept import-light)."""

from __future__ import annotations

import argparse


def add_resource(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "resource",
        metavar="RESOURCE",
        help="TYPE or TYPE/NAME as in kubectl: ns, deploy, po (long and plural spellings too)",
    )
    p.add_argument("-n", "--namespace", default=None, help="namespace of the resource")


def add_tap_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", metavar="RESOURCE", help="only requests to this resource")
    p.add_argument("--to-namespace", metavar="NS", help="namespace of --to")
    p.add_argument("--method", metavar="M", help="only requests with this HTTP method")
    p.add_argument("--path", metavar="PREFIX", help="only requests whose path starts so")
    p.add_argument("--authority", metavar="A", help="only requests to this authority")
    p.add_argument(
        "--max-rps",
        metavar="N",
        type=float,
        default=100.0,
        help="requests per second to show at most (default %(default)s; 0: unlimited)",
    )


def not_built(name: str) -> int:
    from meshtui.errors import NotBuilt

    raise NotBuilt(name)
