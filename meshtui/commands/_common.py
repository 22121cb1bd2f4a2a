"""Argument helpers several commands share (kept import-light)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from meshtui.client.source import Source


def add_resource(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """RESOURCE (optional for commands that can --replay a file instead of a mesh)."""
    p.add_argument(
        "resource",
        metavar="RESOURCE",
        nargs="?" if optional else None,
        help="TYPE or TYPE/NAME as in kubectl: ns, deploy, po (long and plural spellings too)"
        + ("; with --replay, only its requests (default: all)" if optional else ""),
    )
    p.add_argument("-n", "--namespace", default=None, help="namespace of the resource")


def finite(minimum: float = 0.0) -> Callable[[str], float]:
    """An argparse type: a number of at least ``minimum``, neither NaN nor infinite.

    ``float()`` takes "nan" and "inf", and NaN passes every ``<`` check: a
    --max-rps of nan was taken as unlimited, and check --wait nan waited forever.
    """
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {minimum:g} or more")
        return value

    return parse


def namespace_of(option: str, resource: str | None, namespace: str | None) -> None:
    """UsageError for ``--to-namespace`` without ``--to`` (``option``), and the like:
    the namespace would be silently ignored, and the figures not be what was asked."""
    from meshtui.errors import UsageError

    if namespace is not None and not resource:
        raise UsageError(f"{option}-namespace is the namespace of {option} RESOURCE: "
                         f"give {option} too")


def add_tap_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", metavar="RESOURCE", help="only requests to this resource")
    p.add_argument("--to-namespace", metavar="NS", help="namespace of --to")
    p.add_argument("--method", metavar="M", help="only requests with this HTTP method")
    p.add_argument("--path", metavar="PREFIX", help="only requests whose path starts so")
    p.add_argument("--authority", metavar="A", help="only requests to this authority")
    p.add_argument(
        "--filter", metavar="EXPR", default="",
        help="only requests this expression passes, in the TUI's filter language: "
        "method, path, authority, src, dst, status, grpc-status, latency, bytes, h.NAME "
        "compared with = != < > <= >= ~ (regex) !~, joined with and, or, not and "
        "parentheses, e.g. 'status>=500 or latency>100ms'. The proxies cannot know a "
        "response's status, latency or size when a request starts, so response fields "
        "filter after the fact, here: such a request prints when it ends. A method, "
        "authority or path prefix every passing request must have is also sent to the "
        "proxies, as --method, --authority and --path are")
    p.add_argument(
        "--max-rps",
        metavar="N",
        type=finite(),
        default=100.0,
        help="requests per second to show at most (default %(default)s; 0: unlimited)",
    )
    add_redact(p, "shown and written")


def add_redact(p: argparse.ArgumentParser, where: str) -> None:
    """``--redact``: what the proxies (and this client, again) withhold besides the defaults."""
    p.add_argument(
        "--redact", metavar="NAME[,NAME...]",
        help=f"header or query-parameter names, or globs such as '*pin*', whose values are "
        f"{where} as <redacted>, besides the defaults (Authorization, Cookie, X-Api-Key, "
        f"*token*, *secret*, *password*, *session*, ...; see the README) (env MESHTUI_REDACT)")


def redact_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The names of ``--redact``, else of MESHTUI_REDACT; UsageError on a bad one."""
    import os

    from meshtui.errors import UsageError
    from meshtui.model.redact import ENV, parse_names

    text = getattr(args, "redact", None)
    try:
        return parse_names(os.environ.get(ENV, "") if text is None else text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def use_redact(args: argparse.Namespace) -> None:
    """Makes this client redact the defaults plus the user's names, in every view."""
    from meshtui.model.redact import use

    use(redact_names(args))


def add_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replay", metavar="FILE",
                   help="read the events from a file that tap -o json (or w in the feed) "
                   "wrote, instead of a mesh; lines that are not tap events are skipped "
                   "and counted")


def tap_source(args: argparse.Namespace, *, tap_share: float | None = 0.4) -> Source:
    """The file of --replay, else the mesh the options name."""
    if getattr(args, "replay", None):
        from meshtui.client.replay_source import ReplaySource

        return ReplaySource(args.replay)
    return open_source(args, tap_share=tap_share)


def add_source(p: argparse.ArgumentParser) -> None:
    """Where the figures come from: the controller (--server), or a Prometheus."""
    import os

    p.add_argument(
        "--prometheus", metavar="URL", default=os.environ.get("MESHTUI_PROMETHEUS") or None,
        help="read the figures from this Prometheus (env MESHTUI_PROMETHEUS), e.g. a "
        "Linkerd installation's: kubectl -n linkerd-viz port-forward svc/prometheus 9090, "
        "then --prometheus http://127.0.0.1:9090")


def add_time_range(p: argparse.ArgumentParser, what: str) -> None:
    """--since / --until: an absolute range instead of the last -t."""
    p.add_argument("--since", metavar="TIME",
                   help=f"{what} from this time: 14:00, an ISO time "
                   "(2026-12-04T14:00, Z for UTC), or -2h before now")
    p.add_argument("--until", metavar="TIME",
                   help="... up to this time (same forms; default now); with -t alone, "
                   "the window ending then")


def time_range(args: argparse.Namespace, window_text: str | None, *, flag: str = "-t",
               default: str = "1m") -> tuple[int, float | None]:
    """(window seconds, end or None for now) from -t, --since and --until.

    A window up to 15 minutes for the controller; a Prometheus says itself
    what it keeps, so with --prometheus the source checks instead.
    """
    import time
    from datetime import datetime

    from meshtui.errors import UsageError
    from meshtui.model.timerange import parse_range
    from meshtui.model.units import (
        MAX_PROMETHEUS_WINDOW_S,
        MAX_WINDOW_S,
        UnitError,
        check_window,
        format_window,
        parse_window,
    )

    longest = MAX_PROMETHEUS_WINDOW_S if getattr(args, "prometheus", None) else MAX_WINDOW_S
    try:
        since, until = args.since, args.until
        if since is not None and window_text is not None:
            raise UsageError(f"give {flag} or --since, not both: --since sets the window")
        now = time.time()
        span = parse_range(since, until, now, datetime.now().astimezone().tzinfo)  # type: ignore[arg-type]
        window = parse_window(window_text or default, longest)
        if span is None:
            return window, None
        start, end = span
        if since is not None:
            window = check_window(end - start, f"{format_window(end - start)} from --since",
                                  longest)
        return window, end
    except UnitError as e:
        raise UsageError(str(e)) from None


def server_address(args: argparse.Namespace) -> str:
    """--server (or MESHTUI_SERVER) as HOST:PORT; UsageError for anything else.

    Every command that talks to a controller checks it here, so that a typo is
    bad input (exit 2), not a controller that "cannot be reached" (exit 1).
    """
    from meshtui.errors import UsageError
    from meshtui.model.inventory import InventoryError, parse_address

    try:
        return str(parse_address(args.server, what="--server"))
    except InventoryError as e:
        raise UsageError(str(e)) from None


def open_source(args: argparse.Namespace, *, tap_share: float | None = 0.4) -> Source:
    """The source the command's options name (--server, --prometheus), checked.

    Args:
        tap_share: see :func:`meshtui.client.source.open_source`; None for printing.
    """
    from meshtui.client.source import open_source as open_

    server = server_address(args)
    prometheus = getattr(args, "prometheus", None)
    if prometheus is not None:
        from meshtui.client.prometheus_source import check_url

        prometheus = check_url(prometheus)
    return open_(server, prometheus, tap_share=tap_share)


def print_with(source: Source, printer: Callable[..., Awaitable[int]], *args: Any) -> int:
    """Runs a plain printer on ``source`` in a loop of its own, then closes the source."""
    import asyncio

    async def go() -> int:
        try:
            return await printer(source, *args)
        finally:
            await source.close()

    return asyncio.run(go())


def not_built(name: str) -> int:
    from meshtui.errors import NotBuilt

    raise NotBuilt(name)


def parse_filter(text: str):  # type: ignore[no-untyped-def]
    """--filter as a FeedFilter; a UsageError whose second line puts a caret under
    the fault."""
    from meshtui.errors import UsageError
    from meshtui.model.feed_filter import FeedFilter, FilterError
    from meshtui.model.sanitize import clean

    try:
        return FeedFilter.parse(text)
    except FilterError as e:
        # The expression is shown cleaned, and the caret counted in what is shown.
        head = "meshtui: bad --filter: "
        err = UsageError(head + clean(text))
        err.caret = " " * (len(head) + len(clean(text[:e.position]))) + f"^ {e}"
        raise err from None
