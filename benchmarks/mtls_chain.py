"""Meshed-to-meshed traffic for proxy_overhead.py: a client's request through the
caller pod's proxy (outbound, explicit mode) to the called pod's proxy (inbound) and
its app, once in plain TCP and once over mutual TLS (identity from a real
``meshtui controller``)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from meshtui.identity import identity_name
from meshtui.identity.authority import Authority
from meshtui.identity.certs import new_key, write_private
from meshtui.identity.workload import Bundle, contexts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chains(tmp: Path, origin: int) -> tuple[dict[str, int], list[subprocess.Popen[bytes]],
                                                  dict[str, list[int]]]:
    """({"chain plain": port, "chain mTLS": port, "chain mTLS no link": port} of the
    callers' outbound ports and, as "<chain> callee", the called pods' inbound ports; the
    processes; their pids per chain). Requests must name ``127.0.0.1:origin`` as Host."""
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    pids: dict[str, list[int]] = {}
    state = tmp / "ctl-state"
    auth = Authority.in_state_dir(state)
    ctl, ctl_identity = free_port(), free_port()
    # mTLS: the caller's connections as streams of one link (the default); "no link":
    # each in a TLS connection of its own (--link off), for comparison.
    for name, tls, link in (("chain plain", False, True), ("chain mTLS", True, True),
                            ("chain mTLS no link", True, False)):
        inv = tmp / f"inv-{name.replace(' ', '-')}.json"
        callee_in, caller_out = free_port(), free_port()
        inv.write_text(json.dumps({"pods": [
            {"name": "caller-0", "namespace": "bench", "deployment": "caller",
             "address": "127.0.0.3:1", "proxy": "127.0.0.1:1"},
            {"name": "callee-0", "namespace": "bench", "deployment": "callee",
             "address": f"127.0.0.1:{origin}", "proxy": "127.0.0.1:2",
             "inbound": f"127.0.0.1:{callee_in}"}]}))
        if tls and link:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "meshtui", "controller", "--listen", f"127.0.0.1:{ctl}",
                 "--inventory", str(inv), "--state-dir", str(state),
                 "--identity-listen", f"127.0.0.1:{ctl_identity}",
                 "--credential-file", str(tmp / "credential")], stderr=subprocess.DEVNULL))
        chain = []
        for pod, extra in (("callee-0", ["--inbound", f"127.0.0.1:{callee_in}",
                                         "--outbound", "127.0.0.1:0",
                                         "--app", f"127.0.0.1:{origin}"]),
                           ("caller-0", ["--inbound", "127.0.0.1:0",
                                         "--outbound", f"127.0.0.1:{caller_out}"])):
            ident: list[str] = []
            if tls:
                token = tmp / f"token-{pod}"
                write_private(token, auth.pod_token("bench", pod).encode())
                ident = ["--identity", f"127.0.0.1:{ctl_identity}",
                         "--identity-token-file", str(token), "--link", "on" if link else "off"]
            p = subprocess.Popen(
                [sys.executable, "-m", "meshtui", "proxy", *extra, "--tap", "127.0.0.1:0",
                 "--admin", "127.0.0.1:0", "--pod", pod, "--namespace", "bench",
                 "--deployment", pod.split("-")[0], "--inventory", str(inv), *ident],
                stderr=subprocess.DEVNULL)
            procs.append(p)
            chain.append(p.pid)
        ports[name] = caller_out
        ports[f"{name} callee"] = callee_in
        pids[name] = chain
    return ports, procs, pids


def new_connection_ms(port: int, host: str, n: int = 300) -> float:
    """Mean milliseconds of a request on a connection of its own (connect, request,
    response, close): the chain's cost of a new connection, handshakes included."""
    req = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    t0 = time.perf_counter()
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(req)
            while s.recv(65536):
                pass
    return (time.perf_counter() - t0) / n * 1000


def wait_ready(port: int, host: str, timeout: float = 30.0) -> None:
    """Waits until a request through the chain is answered 200 (both proxies up, the
    mTLS chain's certificates issued)."""
    req = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(req)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the meshed chain at port {port} never answered 200")
        time.sleep(0.2)


def caller_context(state: Path) -> ssl.SSLContext:
    """A client context holding the caller pod's identity, as its proxy would, issued by
    the chain's authority (its state directory)."""
    auth = Authority.in_state_dir(state)
    key = new_key()
    issued = auth.issue(identity_name("caller", "bench"), key.public_key())
    return contexts(key, Bundle(issued.leaf, (issued.issuer,), issued.anchor)).client


def handshake_ms(port: int, host: str, ctx: ssl.SSLContext | None, n: int = 300) -> float:
    """Mean milliseconds of a request on a connection of its own to a called pod's
    inbound proxy (connect, TLS handshake when ``ctx``, request, response, close)."""
    req = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    want = identity_name("callee", "bench")
    t0 = time.perf_counter()
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", port))
        with ctx.wrap_socket(raw, server_hostname=want) if ctx is not None else raw as s:
            s.sendall(req)
            while s.recv(65536):
                pass
    return (time.perf_counter() - t0) / n * 1000
