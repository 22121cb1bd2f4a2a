"""meshtui top: the busiest routes, from tap."""

from __future__ import annotations

import argparse

from meshtui.commands._common import (
    add_resource,
    add_tap_filters,
    open_source,
    parse_filter,
    print_with,
)

HELP = "live table of the busiest routes (source, destination, method, path)"
DESCRIPTION = """\
The busiest routes through a resource, built from tap: source, destination,
method and path, with count, best, worst and last latency and success.

On a terminal it opens a live table sorted by count (s/r or a header click
sorts); with -o it samples for --sample seconds, prints once and exits.

examples:
  meshtui top deploy/web -n emojivoto
  meshtui top ns/emojivoto -o json --sample 10"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p)
    add_tap_filters(p)
    p.add_argument("-o", "--output", choices=("table", "json"), help="print a snapshot once")
    p.add_argument("--sample", type=float, default=5.0,
                   help="seconds to sample with -o (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    import sys

    from meshtui.commands.tap import tap_query
    from meshtui.errors import UsageError

    query = tap_query(args)
    if not 0 < args.sample <= 3600:
        raise UsageError("--sample must be between 0 and 3600 seconds")
    if args.output is None and sys.stdout.isatty():
        from meshtui.tui.tap_app import run_tap_app

        return run_tap_app(open_source(args), query, buffer=0, top=True,
                           filter_text=args.filter)
    from meshtui.output.top import print_top

    return print_with(open_source(args, tap_share=None), print_top, query,
                      args.output or "table", args.sample, parse_filter(args.filter))
