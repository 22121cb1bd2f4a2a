"""meshtui controller: the control plane clients talk to."""

from __future__ import annotations

import argparse

from meshtui.commands._common import not_built

HELP = "run the controller: scrapes every proxy, answers stat and tap"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", metavar="HOST:PORT", default=None,
                   help="where clients reach it (default: the clients' default server)")
    p.add_argument("--inventory", metavar="FILE", help="YAML/JSON file of the mesh's pods")


def run(args: argparse.Namespace) -> int:
    return not_built("controller")
