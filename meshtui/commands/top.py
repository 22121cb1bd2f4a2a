"""meshtui top: the busiest routes, from tap."""

from __future__ import annotations

import argparse

from meshtui.commands._common import (
    add_replay,
    add_resource,
    add_tap_filters,
    parse_filter,
    print_with,
    tap_source,
)

HELP = "live table of the busiest routes (source, destination, method, path)"
DESCRIPTION = """\
The busiest routes through a resource, built from tap: source, destination,
method and path, with count, best, worst and last latency and success.

On a terminal it opens a live table sorted by count (s/r or a header click
sorts, b changes the grouping); with -o it samples for --sample seconds,
prints once and exits.

examples:
  meshtui top deploy/web -n emojivoto
  meshtui top ns/emojivoto -o json --sample 10
  meshtui top ns/emojivoto --by dst,status --filter 'status>=500' -o wide --limit 10"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p, optional=True)
    add_tap_filters(p)
    add_replay(p)
    p.add_argument("-o", "--output", choices=("table", "wide", "json"),
                   help="print a snapshot once (wide adds namespaces and direction)")
    p.add_argument("--by", metavar="GROUPS", default="src,dst,method,path",
                   help="what a row groups requests by: any of src,dst,method,path,status,"
                   "authority, comma-separated (default %(default)s; the columns keep "
                   "that order)")
    p.add_argument("--limit", type=int, metavar="N", help="print the N busiest rows only")
    p.add_argument("--sample", type=float, default=5.0,
                   help="seconds to sample with -o (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    import sys

    from meshtui.commands.tap import tap_query
    from meshtui.errors import UsageError
    from meshtui.model.routes import parse_by

    query = tap_query(args)
    try:
        by = parse_by(args.by)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not 0 < args.sample <= 3600:
        raise UsageError("--sample must be between 0 and 3600 seconds")
    if args.output is None and sys.stdout.isatty():
        from meshtui.tui.tap_app import run_tap_app

        return run_tap_app(tap_source(args), query, buffer=0, top=True,
                           filter_text=args.filter, by=by)
    from meshtui.output.top import print_top

    return print_with(tap_source(args, tap_share=None), print_top, query,
                      args.output or "table", args.sample, parse_filter(args.filter), by,
                      args.limit)
