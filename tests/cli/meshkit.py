"""A real mesh of one pod for the client tests: an app, its `meshtui proxy` and a
`meshtui controller`, each its own process on loopback.

The pod's namespace, deployment and name are the test's to choose, hostile
ones included, since what the clients make of such names is what is tested.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

MESHTUI = [sys.executable, "-m", "meshtui"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def announced(log: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    """Waits for a process to say ``pattern`` in its log (it listens once it has)."""
    deadline = time.monotonic() + timeout
    while (m := re.search(pattern, text := log.read_text(errors="replace"))) is None:
        assert time.monotonic() < deadline, f"{log.name} never said {pattern!r}: {text}"
        time.sleep(0.05)
    return m


@contextmanager
def process(args: list[str], **kw: object) -> Iterator[subprocess.Popen[str]]:
    """A process stopped (killed if it will not stop) when the block ends, whatever happened."""
    with subprocess.Popen(args, text=True, stdin=subprocess.DEVNULL, **kw) as p:  # type: ignore[call-overload]
        try:
            yield p
        finally:
            p.terminate()
            with suppress(subprocess.TimeoutExpired):
                p.wait(5)
            p.kill()  # (nothing, if it has stopped)


@dataclass
class Pod:
    namespace: str
    deployment: str
    name: str


@dataclass
class Mesh:
    server: str  # the controller, HOST:PORT
    inbound: tuple[str, int] | None  # the pod's proxy, where requests to the pod go
    controller: subprocess.Popen[str]
    controller_log: Path

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``meshtui --server … ARGS``, its output as text (undecodable bytes escaped)."""
        return subprocess.run([*MESHTUI, "--server", self.server, *args], capture_output=True,
                              text=True, errors="backslashreplace", timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def send(self, raw: bytes) -> bytes:
        """One request, as bytes, to the pod through its proxy; the response's first line."""
        assert self.inbound is not None
        with socket.create_connection(self.inbound, timeout=5) as s:
            s.sendall(raw)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0]


def _printable(name: str) -> str:
    # The proxy refuses names it could not print; the inventory, which the
    # controller names pods by, is where hostile ones come from.
    return "".join(c for c in name if c.isprintable()) or "x"


def _log(stack: ExitStack, path: Path) -> object:
    # Logs go to files: a pipe nobody reads would stop a chatty process when full.
    return stack.enter_context(path.open("w"))


@contextmanager
def controller(tmp_path: Path, pods: list[dict[str, str]],
               inbound: tuple[str, int] | None = None) -> Iterator[Mesh]:
    """A `meshtui controller` whose inventory holds ``pods`` (as the file spells them)."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"pods": pods}))
    server = f"127.0.0.1:{free_port()}"
    log = tmp_path / "controller.log"
    with ExitStack() as stack:
        ctl = stack.enter_context(process(
            [*MESHTUI, "controller", "-v", "--inventory", str(inventory), "--listen", server,
             "--scrape-interval", "0.25", "--scrape-timeout", "0.2"],
            stderr=_log(stack, log), env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        announced(log, "controller listening")
        yield Mesh(server, inbound, ctl, log)


@contextmanager
def one_pod_mesh(tmp_path: Path, pod: Pod, proxy_args: tuple[str, ...] = ()) -> Iterator[Mesh]:
    """The app (Python's http.server), its proxy (with ``proxy_args`` too) and a
    controller that knows the pod."""
    with ExitStack() as stack:
        app_log = tmp_path / "app.log"
        stack.enter_context(process(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
             "--directory", str(tmp_path)], stdout=_log(stack, app_log),
            stderr=subprocess.STDOUT))
        app = "127.0.0.1:" + announced(app_log, r"port (\d+)").group(1)
        proxy_log = tmp_path / "proxy.log"
        stack.enter_context(process(
            [*MESHTUI, "proxy", "--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0",
             "--tap", "127.0.0.1:0", "--admin", "off", "--app", app,
             "--namespace", _printable(pod.namespace), "--deployment",
             _printable(pod.deployment), "--pod", _printable(pod.name), *proxy_args],
            stderr=_log(stack, proxy_log)))
        line = announced(proxy_log, r"inbound .*\n").group(0)
        found = {k: (h, int(p)) for k, h, p in re.findall(r"(\w+) ([\d.]+):(\d+)", line)}
        yield stack.enter_context(controller(tmp_path, [{
            "name": pod.name, "namespace": pod.namespace, "deployment": pod.deployment,
            "address": app, "proxy": "{}:{}".format(*found["tap"]),
            "inbound": "{}:{}".format(*found["inbound"])}], found["inbound"]))


def outputs_while(mesh: Mesh, tmp_path: Path, commands: dict[str, list[str]],
                  traffic: Callable[[], None], timeout: float = 40) -> dict[str, str]:
    """Runs ``meshtui --server … ARGS`` for every command at once, calling ``traffic``
    every 0.2 s until all have exited 0; their outputs (stdout and stderr) by name."""
    files = {k: tmp_path / f"{k}.out" for k in commands}
    with ExitStack() as stack:
        procs = {k: stack.enter_context(process(
            [*MESHTUI, "--server", mesh.server, *args],
            stdout=stack.enter_context(files[k].open("w")), stderr=subprocess.STDOUT))
            for k, args in commands.items()}
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs.values()):
            assert time.monotonic() < deadline, f"{', '.join(commands)} did not finish"
            traffic()
            time.sleep(0.2)
        assert all(p.returncode == 0 for p in procs.values()), {
            k: files[k].read_text() for k in procs}
    return {k: f.read_bytes().decode("utf-8", "backslashreplace") for k, f in files.items()}
