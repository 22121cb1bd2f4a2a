"""meshtui tap: the live feed of requests."""

from __future__ import annotations

import argparse

from meshtui.commands._common import add_resource, add_tap_filters, not_built

HELP = "live feed of the requests passing through a resource's proxies"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p)
    add_tap_filters(p)
    p.add_argument("--limit", type=int, metavar="N", help="stop after N events")
    p.add_argument("-o", "--output", choices=("text", "wide", "json"), help="plain output")
    p.add_argument("--buffer", type=int, default=100_000, help="events the feed keeps")


def run(args: argparse.Namespace) -> int:
    return not_built("tap")
