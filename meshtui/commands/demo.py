"""meshtui demo: a whole small mesh on this machine."""

from __future__ import annotations

import argparse

HELP = "start the embedded demo mesh and open the dashboard on it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="run the mesh alone until interrupted")
    p.add_argument(
        "--intercept",
        choices=("proxy", "iptables"),
        default="proxy",
        help="explicit proxying (default) or iptables in network namespaces (root)",
    )
    p.add_argument("--scale", type=int, default=1, help="replicas of each emojivoto deployment")
    from meshtui.demo.prometheus import DEFAULT_LISTEN, SCRAPE_INTERVAL

    p.add_argument("--prometheus-listen", metavar="HOST:PORT", default=str(DEFAULT_LISTEN),
                   help="where the demo's Prometheus serves (default %(default)s); "
                   "`none` runs no Prometheus")
    p.add_argument("--prometheus-interval", metavar="DURATION", default=SCRAPE_INTERVAL,
                   help="how often the demo's Prometheus scrapes every proxy (default "
                   "%(default)s, as Linkerd viz; 1s to 60s)")
    p.add_argument("--source", choices=("controller", "prometheus"), default="controller",
                   help="what the dashboard reads its figures from: the controller (default, "
                   "the last 15 minutes) or the demo's Prometheus (6 hours)")
    from meshtui.commands._common import add_redact

    add_redact(p, "shown (by the demo's proxies, and by the dashboard again)")


def run(args: argparse.Namespace) -> int:
    import os

    from meshtui.commands._common import redact_names, use_redact
    from meshtui.demo.run import run_demo
    from meshtui.errors import UsageError
    from meshtui.model.inventory import InventoryError, parse_address

    try:
        server = parse_address(args.server, what="--server")
        prometheus = (None if args.prometheus_listen == "none"
                      else parse_address(args.prometheus_listen, what="--prometheus-listen"))
    except InventoryError as e:
        raise UsageError(str(e)) from None
    from meshtui.model.units import UnitError, format_window, parse_duration

    try:
        every = parse_duration(args.prometheus_interval)
    except UnitError as e:
        raise UsageError(f"--prometheus-interval: {e}") from None
    if not 1 <= every <= 60 or every != int(every):
        raise UsageError("--prometheus-interval must be whole seconds from 1s to 60s")
    if args.source == "prometheus" and prometheus is None:
        raise UsageError("--source prometheus needs the demo's Prometheus "
                         "(--prometheus-listen is none)")
    names = redact_names(args)
    if names:  # the demo's proxies inherit the environment (meshtui.demo.supervisor)
        from meshtui.model.redact import ENV

        os.environ[ENV] = ",".join(names)
    use_redact(args)
    return run_demo(server, headless=args.headless, intercept=args.intercept, scale=args.scale,
                    prometheus=prometheus, source=args.source,
                    prometheus_interval=format_window(every))
