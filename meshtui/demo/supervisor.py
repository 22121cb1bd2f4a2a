"""Runs the demo's processes and makes sure none outlives the demo.

Every child gets ``PR_SET_PDEATHSIG`` so the kernel ends it if the demo dies
without cleaning up (even by SIGKILL); a normal stop sends SIGTERM to each,
then SIGKILL to whatever is left after a grace period. A child that exits
while the mesh runs is restarted with backoff, as a kubelet restarts a
crashed container; one that fails during start-up aborts the start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meshtui.demo.topology import ProcessSpec
from meshtui.errors import RuntimeFailure
from meshtui.model.inventory import Address

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgid(0, 0)  # Ctrl-C in the terminal reaches the demo, which stops the children


@dataclass
class Child:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    log_path: Path
    restarts: int = 0
    next_restart: float = 0.0
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(self, log_dir: Path, log: Callable[[str], None] | None = None) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self._log = log or (lambda _msg: None)
        self.stopping = False

    def _spawn(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        safe = spec.label.replace(" ", "_").replace("(", "").replace(")", "")
        log_path = self.log_dir / f"{safe}.log"
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as logf:
            return subprocess.Popen(spec.argv, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def start(self, spec: ProcessSpec) -> Child:
        proc = self._spawn(spec)
        safe = spec.label.replace(" ", "_").replace("(", "").replace(")", "")
        child = Child(spec, proc, self.log_dir / f"{safe}.log")
        self.children.append(child)
        return child

    def wait_ready(self, timeout: float) -> None:
        """Waits until every child is up; RuntimeFailure naming the first that is not."""
        deadline = time.monotonic() + timeout
        pending = [c for c in self.children
                   if c.spec.ready_http or c.spec.ready_tcp or c.spec.ready_cmd]
        while pending:
            for c in self.children:
                if c.proc.poll() is not None:
                    raise RuntimeFailure(
                        f"demo: {c.spec.label} exited with code {c.proc.returncode} during "
                        f"start-up: {last_line(c.log_path)}")
            pending = [c for c in pending if not _is_ready(c.spec)]
            if not pending:
                return
            if time.monotonic() > deadline:
                c = pending[0]
                raise RuntimeFailure(f"demo: {c.spec.label} not ready after {timeout:.0f}s: "
                                     f"{last_line(c.log_path)}")
            time.sleep(0.05)

    def tend(self) -> None:
        """Restarts children that exited (call every so often while running)."""
        now = time.monotonic()
        for c in self.children:
            if self.stopping or c.proc.poll() is None:
                continue
            if c.next_restart == 0.0:
                backoff = min(30.0, 1.0 * 2 ** min(c.restarts, 5))
                c.next_restart = now + backoff
                self._log(f"{c.spec.label} exited with code {c.proc.returncode}; "
                          f"restarting in {backoff:.0f}s")
            elif now >= c.next_restart:
                c.proc = self._spawn(c.spec)
                c.restarts += 1
                c.next_restart = 0.0
                c.started = now

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM to every child, SIGKILL to any still there after ``grace``."""
        self.stopping = True
        for c in self.children:
            if c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for c in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for c in self.children:
            if c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()
                c.proc.wait()

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children if c.proc.poll() is None]


def _is_ready(spec: ProcessSpec) -> bool:
    if spec.ready_tcp and not _accepts(spec.ready_tcp):
        return False
    if spec.ready_cmd:
        try:
            done = subprocess.run(spec.ready_cmd, capture_output=True, timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            return False
    if spec.ready_http:
        try:
            with urllib.request.urlopen(f"http://{spec.ready_http}{spec.ready_path}",
                                        timeout=0.5) as r:
                return bool(r.status == 200)
        except OSError:
            return False
    return True


def _accepts(addr: Address) -> bool:
    try:
        with socket.create_connection((addr.host, addr.port), timeout=0.3):
            return True
    except OSError:
        return False


def port_in_use(addr: Address) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in addr.host else socket.AF_INET) as s:
        # As the listener will: connections in TIME_WAIT do not make a port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr.host, addr.port))
        except OSError:
            return True
    return False


def last_line(path: Path) -> str:
    """The last non-empty line of a log, for one-line failure messages."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1].strip()[:200] if lines else "(no output)"
