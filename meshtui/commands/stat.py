"""meshtui stat: golden metrics per resource."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from meshtui.commands._common import (
    add_resource,
    add_source,
    add_time_range,
    namespace_of,
    open_source,
    print_with,
    time_range,
)

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
  meshtui stat po -A -t 10s -o wide
  meshtui stat deploy -n emojivoto --prometheus http://127.0.0.1:9090 -t 1h
  meshtui stat deploy -n emojivoto --prometheus http://127.0.0.1:9090 --since 14:00 --until 15:00

Over --prometheus (or MESHTUI_PROMETHEUS) the figures are Linkerd viz's own
queries against that Prometheus, so they match `linkerd viz stat` there; MESHED
counts the proxies it scrapes."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p)
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("--from", dest="from_", metavar="RESOURCE", help="only traffic from this")
    p.add_argument("--from-namespace", metavar="NS", help="namespace of --from")
    p.add_argument("--to", metavar="RESOURCE", help="only traffic to this resource")
    p.add_argument("--to-namespace", metavar="NS", help="namespace of --to")
    p.add_argument("-t", "--time-window", default=None,
                   help="window: 10s to 15m over the controller, up to what a Prometheus "
                   "keeps over --prometheus (default 1m)")
    add_time_range(p, "figures")
    add_source(p)
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

    window, until = time_range(args, args.time_window)
    namespace_of("--from", args.from_, args.from_namespace)
    namespace_of("--to", args.to, args.to_namespace)
    try:
        sel = parse_resource(args.resource, args.namespace, args.all_namespaces)
        from_ = to = None
        if args.from_:
            f = parse_resource(args.from_, args.from_namespace or sel.namespace)
            from_ = (f.kind, f.namespace, f.name)
        if args.to:
            t = parse_resource(args.to, args.to_namespace or sel.namespace)
            to = (t.kind, t.namespace, t.name)
    except SelectorError as e:
        raise UsageError(str(e)) from None
    if not 0.1 <= args.interval <= 60:
        raise UsageError("--interval must be between 0.1 and 60 seconds")
    query = StatQuery(sel.kind, sel.namespace, sel.name, window, from_, to, until=until)
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
    import sys

    from meshtui.output.stat import stat_json, stat_table

    snap = await source.stats(query)
    if output == "json":
        print(stat_json(snap.rows))
    else:
        print(stat_table(snap.rows, query.kind, all_namespaces=all_namespaces,
                         wide=output == "wide"))
        # JSON carries it in each row ("partial", "missing_pods"); a table, on stderr.
        if (note := snap.partial_note()) is not None:
            print(f"meshtui: {note}", file=sys.stderr)
    return 0
