"""meshtui proxy-init: what the init container runs."""

from __future__ import annotations

import argparse

from meshtui.commands._common import not_built

HELP = "install the iptables rules that send a pod's traffic through its proxy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="print the rules, change nothing")
    p.add_argument("--uninstall", action="store_true", help="remove the rules")


def run(args: argparse.Namespace) -> int:
    return not_built("proxy-init")
