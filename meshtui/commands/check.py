"""meshtui check: is the mesh healthy?"""

from __future__ import annotations

import argparse

from meshtui.commands._common import finite, server_address

HELP = "check that the controller and the proxies are reachable and healthy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=finite(), default=0.0, metavar="SECONDS",
                   help="seconds to keep trying until every check passes (default: try once)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from meshtui.checks import run_checks

    server = server_address(args)
    return asyncio.run(run_checks(server, wait_s=args.wait))
