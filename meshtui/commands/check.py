"""meshtui check: is the mesh healthy?"""

from __future__ import annotations

import argparse

from meshtui.commands._common import not_built

HELP = "check that the controller and the proxies are reachable and healthy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for health")


def run(args: argparse.Namespace) -> int:
    return not_built("check")
