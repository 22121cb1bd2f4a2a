"""meshtui tap: the live feed of requests."""

from __future__ import annotations

import argparse

from meshtui.commands._common import (
    add_replay,
    add_resource,
    add_tap_filters,
    namespace_of,
    parse_filter,
    print_with,
    tap_source,
    use_redact,
)

HELP = "live feed of the requests passing through a resource's proxies"
DESCRIPTION = """\
The live feed of requests through a resource's proxies: each request's start,
its response's start, and its end, as the proxies saw them.

On a terminal it opens a scrolling feed (follow, pause, filter, details);
with -o, or when the output is not a terminal, it prints one line (or one
JSON object) per event until --limit events, Ctrl-C, or a closed pipe.

examples:
  meshtui tap deploy/web -n emojivoto
  meshtui tap deploy/web -n emojivoto --to deploy/voting --path /api/vote
  meshtui tap ns/emojivoto --method GET -o json --limit 100 > saved.jsonl
  meshtui tap deploy/web -n emojivoto --path /api/vote --capture-body 4096
  meshtui tap --replay saved.jsonl --filter 'status>=500'"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_resource(p, optional=True)
    add_tap_filters(p)
    add_replay(p)
    p.add_argument("--limit", type=int, metavar="N",
                   help="stop after N events (the live feed then keeps them to browse)")
    p.add_argument("-o", "--output", choices=("text", "wide", "json"), help="plain output")
    p.add_argument("--capture-body", type=int, metavar="N", default=0,
                   help="ask the proxies for the first N bytes (at most 65536) of each "
                        "request and response body: escaped text, hex or gRPC messages in "
                        "the feed, base64 in -o json. Off by default; the proxies copy the "
                        "bytes as they pass, and their --max-capture-body may lower N")
    p.add_argument("--buffer", type=int,
                   help="events the feed keeps (default 100000; with --replay 1000000)")


def tap_query(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The tap options of ``tap`` and ``top`` as a query; UsageError if they are bad."""
    from meshtui.client.queries import TapQuery
    from meshtui.errors import UsageError
    from meshtui.model.feed_filter import proxy_match
    from meshtui.model.selectors import SelectorError, parse_resource
    from meshtui.model.tap import MAX_CAPTURE_BODY

    namespace_of("--to", args.to, args.to_namespace)
    use_redact(args)
    if args.resource is None and not getattr(args, "replay", None):
        raise UsageError("RESOURCE is needed (such as deploy/web), or --replay FILE")
    try:
        sel = parse_resource(args.resource or "ns", args.namespace)
        to = None
        if args.to:
            t = parse_resource(args.to, args.to_namespace or sel.namespace)
            to = (t.kind, t.namespace, t.name)
    except SelectorError as e:
        raise UsageError(str(e)) from None
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    capture = getattr(args, "capture_body", 0) or 0
    if not 0 <= capture <= MAX_CAPTURE_BODY:
        raise UsageError(f"--capture-body must be from 0 to {MAX_CAPTURE_BODY} bytes, "
                         f"not {capture}")
    # What of --filter the proxies can check, unless the flags already ask.
    pushed = proxy_match(parse_filter(args.filter))
    return TapQuery(sel.kind, sel.namespace, sel.name, to,
                    (args.method or pushed.get("method", "")).upper(),
                    args.path or pushed.get("path_prefix", ""),
                    args.authority or pushed.get("authority", ""), args.max_rps,
                    capture_body=capture)


def run(args: argparse.Namespace) -> int:
    import sys

    from meshtui.errors import UsageError

    query = tap_query(args)
    buffer = args.buffer or (1_000_000 if args.replay else 100_000)
    if buffer < 100:
        raise UsageError("--buffer must be at least 100")
    if args.output is None and sys.stdout.isatty():
        from meshtui.tui.tap_app import run_tap_app

        return run_tap_app(tap_source(args), query, buffer=buffer, limit=args.limit,
                           filter_text=args.filter)
    from meshtui.output.tap import print_tap

    return print_with(tap_source(args, tap_share=None), print_tap, query,
                      args.output or "text", args.limit, parse_filter(args.filter))
