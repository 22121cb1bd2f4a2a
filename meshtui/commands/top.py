"""meshtui top: the busiest routes, from tap."""

from __future__ import annotations

import argparse

from meshtui.commands._common import add_resource, add_tap_filters, not_built

HELP = "live table of the busiest routes (source, destination, method, path)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p)
    add_tap_filters(p)
    p.add_argument("-o", "--output", choices=("table", "json"), help="print a snapshot once")
    p.add_argument("--sample", type=float, default=5.0, help="seconds to sample with -o")


def run(args: argparse.Namespace) -> int:
    return not_built("top")
