"""meshtui edges: who calls whom, with the figures of each call."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from meshtui.commands._common import (
    add_resource,
    add_source,
    add_time_range,
    open_source,
    print_with,
    time_range,
)

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.client.queries import EdgeQuery
    from meshtui.client.source import Source

HELP = "who calls whom: source and destination of each call, secured or not, with its figures"
DESCRIPTION = """\
Edges between resources of one type: for each source resource, every
destination its proxies sent requests to over the window, with Linkerd's
columns (SRC DST SRC_NS DST_NS SECURED) and the calls' success rate,
requests per second and p99 latency (-o wide adds p50 and p95).

SECURED shows √ when every request of the edge in the window travelled
over mTLS.

examples:
  meshtui edges deploy -n emojivoto
  meshtui edges po -A -o wide
  meshtui edges deploy -n emojivoto -o json
  meshtui edges deploy -n emojivoto --prometheus http://127.0.0.1:9090 -t 5m"""

def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p)
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("-t", "--time-window", default=None, help="window (default 1m)")
    add_time_range(p, "figures")
    add_source(p)
    p.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table",
                   help="output format")


def run(args: argparse.Namespace) -> int:
    from meshtui.client.queries import EdgeQuery
    from meshtui.errors import UsageError
    from meshtui.model.selectors import SelectorError, parse_resource

    try:
        sel = parse_resource(args.resource, args.namespace, args.all_namespaces)
    except SelectorError as e:
        raise UsageError(str(e)) from None
    if sel.name is not None:
        raise UsageError("edges takes a resource type (deploy, po or ns), not a name")
    window, until = time_range(args, args.time_window)
    query = EdgeQuery(sel.kind, sel.namespace, window, until)
    return print_with(open_source(args, tap_share=None), _print_once, query, args.output)


async def _print_once(source: Source, query: EdgeQuery, output: str) -> int:
    from meshtui.output.edges import edges_json, edges_table

    rows = await source.edges(query)
    print(edges_json(rows) if output == "json" else edges_table(rows, wide=output == "wide"))
    return 0
