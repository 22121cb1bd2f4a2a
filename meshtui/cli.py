"""The ``meshtui`` command line: parse, dispatch, and turn failures into exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from meshtui import __version__
from meshtui.commands import COMMANDS
from meshtui.errors import RuntimeFailure, UsageError

DEFAULT_SERVER = "127.0.0.1:8086"
# gRPC's C core writes some failures (a TLS handshake refused) to stderr at INFO; a
# command says what went wrong in its own line. Set before any command loads gRPC.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (not a usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"meshtui.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="meshtui",
        description=(
            "A terminal window onto a service mesh: golden metrics (success rate, "
            "requests/s, latency percentiles, TCP connections) and live requests, "
            "streamed from the mesh's proxies through its controller. "
            "Run without a command for the dashboard."
        ),
    )
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        default=os.environ.get("MESHTUI_SERVER", DEFAULT_SERVER),
        help="the controller to talk to (env MESHTUI_SERVER; default %(default)s, "
        "where `meshtui demo` listens)",
    )
    parser.add_argument("--version", action="version", version=f"meshtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        mod = _command_module(name)
        p = sub.add_parser(
            name.replace("_", "-"),
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


# Options whose values may start with "-" (`--since -2h`): argparse would take
# such a value for an option of its own.
_DASHED_VALUES = ("--since", "--until")


def _join_dashed_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _DASHED_VALUES and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _join_dashed_values(list(sys.argv[1:] if argv is None else argv))
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        run = getattr(args, "_run", None)
        if run is None:  # no command: the dashboard
            run = _command_module("dashboard").run
            args = parser.parse_args([*args_list, "dashboard"])
        code = run(args)
        return int(code or 0)
    except UsageError as e:
        print(f"meshtui: {_one_line(e)}" if not str(e).startswith("meshtui") else _one_line(e),
              file=sys.stderr)
        if e.caret is not None:
            print(e.caret, file=sys.stderr)
        return e.exit_code
    except RuntimeFailure as e:
        print(f"meshtui: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `meshtui tap ... | head`: the reader left; leave quietly.
        _silence_stdout()
        return 0
    except Exception as e:  # a bug: still one line, with the way to the details
        if os.environ.get("MESHTUI_DEBUG"):
            raise
        print(f"meshtui: internal error: {type(e).__name__}: {_one_line(e)} "
              "(run with MESHTUI_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
