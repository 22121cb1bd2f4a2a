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


def run(args: argparse.Namespace) -> int:
    from meshtui.demo.run import run_demo
    from meshtui.errors import UsageError
    from meshtui.model.inventory import InventoryError, parse_address

    try:
        server = parse_address(args.server, what="--server")
    except InventoryError as e:
        raise UsageError(str(e)) from None
    return run_demo(server, headless=args.headless, intercept=args.intercept, scale=args.scale)
