"""meshtui proxy: the sidecar."""

from __future__ import annotations

import argparse

from meshtui.commands._common import not_built

HELP = "run the sidecar proxy of one pod"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inbound", metavar="HOST:PORT", help="inbound listener (default :4143)")
    p.add_argument("--outbound", metavar="HOST:PORT", help="outbound listener (default :4140)")
    p.add_argument("--app", metavar="HOST:PORT", help="the app this proxy fronts")
    p.add_argument("--tap", metavar="HOST:PORT", help="gRPC tap/metrics (default :4190)")
    p.add_argument("--admin", metavar="HOST:PORT", help="/metrics, /ready, /live (default :4191)")
    p.add_argument("--pod", help="pod name")
    p.add_argument("--namespace", help="pod namespace")
    p.add_argument("--deployment", help="pod deployment")


def run(args: argparse.Namespace) -> int:
    return not_built("proxy")
