"""The command line as a user meets it: help, versions, exit codes, one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

MESHTUI = str(Path(sys.executable).parent / "meshtui")
CONTRACT = ("stat", "tap", "top", "dashboard", "demo", "controller", "proxy", "proxy-init",
            "inject", "check", "version")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESHTUI, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def test_help_lists_every_command_of_the_contract() -> None:
    out = run("--help")
    assert out.returncode == 0
    for cmd in CONTRACT:
        assert f"    {cmd} " in out.stdout, f"{cmd} missing from --help"
    assert "--server" in out.stdout


def test_version_names_meshtui_and_its_libraries() -> None:
    out = run("version")
    assert out.returncode == 0
    first, *libs = out.stdout.splitlines()
    assert first.startswith("meshtui ")
    assert any("grpcio" in line for line in libs)


@pytest.mark.parametrize(
    "args",
    [
        ("stat",),  # missing RESOURCE
        ("frobnicate",),
        ("stat", "deploy", "--output", "yaml"),
        ("tap", "deploy/web", "--max-rps", "lots"),
        ("dashboard", "--web", "--port", "99999"),
        ("dashboard", "--interval", "0"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert lines[0].startswith("meshtui")


def test_server_flag_defaults_from_environment() -> None:
    from meshtui.cli import build_parser

    old = os.environ.get("MESHTUI_SERVER")
    os.environ["MESHTUI_SERVER"] = "10.9.8.7:1234"
    try:
        args = build_parser().parse_args(["version"])
    finally:
        if old is None:
            del os.environ["MESHTUI_SERVER"]
        else:
            os.environ["MESHTUI_SERVER"] = old
    assert args.server == "10.9.8.7:1234"


def test_package_root_imports_nothing_heavy() -> None:
    code = (
        "import sys, meshtui.cli\n"
        "meshtui.cli.build_parser()\n"
        "heavy = [m for m in ('textual', 'grpc', 'rich', 'google.protobuf') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_dashboard_without_a_terminal_says_what_to_use_instead() -> None:
    out = run("dashboard")  # stdout a pipe, stdin /dev/null
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a terminal" in lines[0] and "meshtui stat" in lines[0]


@pytest.mark.parametrize("args", [("stat", "deploy", "-n", "emojivoto"),
                                  ("tap", "deploy/web", "-n", "emojivoto", "-o", "json"),
                                  ("top", "deploy/web", "-n", "emojivoto", "-o", "json")])
def test_no_controller_is_exit_1_with_the_address_and_how_to_start_one(
        args: tuple[str, ...]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        server = f"127.0.0.1:{s.getsockname()[1]}"
    out = run("--server", server, *args)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and server in lines[0] and "meshtui demo" in lines[0], out.stderr


def test_dashboard_web_on_a_port_in_use_says_so_first() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run("dashboard", "--web", "--port", str(port))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], out.stderr
