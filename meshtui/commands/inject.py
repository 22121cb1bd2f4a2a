"""meshtui inject: add the sidecar to Kubernetes YAML."""

from __future__ import annotations

import argparse

from meshtui.commands._common import not_built

HELP = "add the proxy sidecar and its init container to Kubernetes YAML"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE|-", help="a YAML file, or - for standard input")


def run(args: argparse.Namespace) -> int:
    return not_built("inject")
