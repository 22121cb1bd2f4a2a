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


@pytest.fixture
def dead_server() -> str:
    """An address where nothing listens: a command that got past its input would
    fail to reach it (exit 1), so exit 2 shows the input itself was refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(("args", "says"), [
    (("stat", "deploy", "-n", "emojivoto", "--to-namespace", "other"), "--to-namespace"),
    (("stat", "deploy", "-n", "emojivoto", "--from-namespace", "other"), "--from-namespace"),
    (("tap", "deploy/web", "-n", "emojivoto", "--to-namespace", "other", "-o", "json"),
     "--to-namespace"),
    (("top", "deploy/web", "-n", "emojivoto", "--to-namespace", "other", "-o", "json"),
     "--to-namespace"),
    (("tap", "deploy/web", "--max-rps", "nan", "-o", "json"), "--max-rps"),
    (("tap", "deploy/web", "--max-rps", "inf", "-o", "json"), "--max-rps"),
    (("top", "deploy/web", "--max-rps", "-1", "-o", "json"), "--max-rps"),
    (("check", "--wait", "-5"), "--wait"),
    (("check", "--wait", "nan"), "--wait"),
])
def test_input_that_would_be_ignored_or_misread_is_refused(
        dead_server: str, args: tuple[str, ...], says: str) -> None:
    out = run("--server", dead_server, *args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("server", ["nonsense", "127.0.0.1:99999", "127.0.0.1:", ":8086"])
@pytest.mark.parametrize("args", [("check",), ("stat", "ns", "-o", "json"),
                                  ("tap", "ns", "-o", "json"), ("top", "ns", "-o", "json"),
                                  ("dashboard",)])
def test_a_bad_server_address_is_bad_input_for_every_command(
        server: str, args: tuple[str, ...]) -> None:
    for how in ({"args": ("--server", server)}, {"env": {"MESHTUI_SERVER": server}}):
        out = run(*how.get("args", ()), *args, env=how.get("env"))  # type: ignore[arg-type]
        assert out.returncode == 2, (how, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"bad --server {server!r}" in lines[0], out.stderr
        assert out.stdout == ""
