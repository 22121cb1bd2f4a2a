"""meshtui version."""

from __future__ import annotations

import argparse

HELP = "print the versions of meshtui and the libraries it runs on"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client", action="store_true", help="only the client's version")


def run(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from meshtui import __version__

    print(f"meshtui {__version__}")
    if args.client:
        return 0
    for lib in ("textual", "rich", "grpcio", "protobuf"):
        try:
            print(f"  {lib} {version(lib)}")
        except PackageNotFoundError:
            print(f"  {lib} (not installed)")
    return 0
