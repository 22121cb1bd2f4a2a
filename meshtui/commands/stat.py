"""meshtui stat: golden metrics per resource."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from meshtui.commands._common import add_resource, namespace_of, open_source, print_with

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.client.queries import StatQuery
    from meshtui.client.source import Source

HELP = "golden metrics (success rate, rps, latency, TCP) per namespace, deployment or pod"
DESCRIPTION = """\
Golden metrics per resource: success rate, requests per second, p50/p95/p99
latency and open TCP connections, over a time window.

On a terminal it opens a live table (sort with s/r or a header click, Enter
drills down, Escape goes back); with -o, or when the output is not a terminal,
it prints once and exits.

examples:
  meshtui stat ns
  meshtui stat deploy -n emojivoto
  meshtui stat deploy/web -n emojivoto --to deploy/voting -o json
  meshtui stat po -A -t 10s -o wide"""


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
    import sys

    from meshtui.client.queries import StatQuery
    from meshtui.errors import UsageError
    from meshtui.model.selectors import SelectorError, parse_resource
    from meshtui.model.units import UnitError, parse_window

    namespace_of("--from", args.from_, args.from_namespace)
    namespace_of("--to", args.to, args.to_namespace)
    try:
        sel = parse_resource(args.resource, args.namespace, args.all_namespaces)
        window = parse_window(args.time_window)
        from_ = to = None
        if args.from_:
            f = parse_resource(args.from_, args.from_namespace or sel.namespace)
            from_ = (f.kind, f.namespace, f.name)
        if args.to:
            t = parse_resource(args.to, args.to_namespace or sel.namespace)
            to = (t.kind, t.namespace, t.name)
    except (SelectorError, UnitError) as e:
        raise UsageError(str(e)) from None
    if not 0.1 <= args.interval <= 60:
        raise UsageError("--interval must be between 0.1 and 60 seconds")
    query = StatQuery(sel.kind, sel.namespace, sel.name, window, from_, to)
    interactive = args.watch or (args.output is None and sys.stdout.isatty())
    source = open_source(args)
    if interactive:
        from meshtui.tui.app import MeshApp, run_app

        return run_app(MeshApp(source, query, interval=args.interval,
                               wide=args.output == "wide"))
    return print_with(source, _print_once, query, args.output or "table",
                      sel.namespace is None)


async def _print_once(source: Source, query: StatQuery, output: str,
                      all_namespaces: bool) -> int:
    from meshtui.output.stat import stat_json, stat_table

    snap = await source.stats(query)
    if output == "json":
        print(stat_json(snap.rows))
    else:
        print(stat_table(snap.rows, query.kind, all_namespaces=all_namespaces,
                         wide=output == "wide"))
    return 0
