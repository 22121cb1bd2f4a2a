"""meshtui dashboard (also `meshtui` alone): the whole mesh at a glance."""

from __future__ import annotations

import argparse

from meshtui.commands._common import not_built

HELP = "full-screen dashboard: namespaces, deployments, pods, charts, tap and top"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web", action="store_true", help="serve it to a browser instead")
    p.add_argument("--port", type=int, default=8000, help="port for --web (default 8000)")


def run(args: argparse.Namespace) -> int:
    return not_built("dashboard")
