"""meshtui check: is the mesh healthy?"""

from __future__ import annotations

import argparse

HELP = "check that the controller and the proxies are reachable and healthy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, default=0.0,
                   help="seconds to keep trying until every check passes (default: try once)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from meshtui.checks import run_checks

    return asyncio.run(run_checks(args.server, wait_s=args.wait))
