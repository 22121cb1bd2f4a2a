"""proxy-init for real: its rules installed in throw-away network namespaces,
read back with ``iptables-save``, and real TCP connections that end up where
the rules say. Two namespaces, "pod" and "peer", are joined by a veth pair
carrying 10.213.9.0/30, which exists only inside them; both are deleted after
the tests, failed or not.

Needs root, ``ip`` and ``iptables``; skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from meshtui.proxy import init
from meshtui.proxy.origdst import original_dst

pytestmark = pytest.mark.root

PEER_IP, POD_IP = "10.213.9.1", "10.213.9.2"
PROXY_UID = 2102
MARK = 0x2102
APP_PORT, IGNORED_IN, PEER_PORT, IGNORED_OUT = 8080, 2222, 9090, 5432
CONFIG = init.InitConfig(
    proxy_uid=PROXY_UID, proxy_mark=MARK,
    inbound_ports_to_ignore=init.parse_ports(str(IGNORED_IN)),
    outbound_ports_to_ignore=init.parse_ports(str(IGNORED_OUT)))
MESHTUI = str(Path(sys.executable).parent / "meshtui")
T = TypeVar("T")


def sh(*args: str) -> str:
    """Runs a command; its stdout, or RuntimeError with its stderr."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if p.returncode == 0:
        return p.stdout
    raise RuntimeError(f"{shlex.join(args)}: {p.stderr.strip()}")


def nat(ns: str) -> str:
    """``iptables-save -t nat`` of a namespace, without its timestamped comments."""
    out = sh("ip", "netns", "exec", ns, "iptables-save", "-t", "nat")
    return "\n".join(line for line in out.splitlines() if not line.startswith("#"))


def ours(saved: str) -> list[str]:
    """The lines of a save that are meshtui's: its chains and every rule naming them."""
    return [line for line in saved.splitlines() if "MESHTUI_PROXY_INIT" in line]


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Runs ``fn`` in a thread that has entered ``ns``: sockets it makes stay there."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def listener(ns: str, host: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(16)
        s.setblocking(False)
        return s
    return in_netns(ns, make)


def connect(ns: str, host: str, port: int, mark: int | None = None) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket()
        if mark is not None:
            s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_MARK", 36), mark)
        s.settimeout(3)
        s.connect((host, port))
        return s
    return in_netns(ns, make)


@dataclass
class Pod:
    """The two namespaces, and listeners standing for the proxy, the app and a peer."""

    pod: str
    peer: str
    listeners: dict[str, socket.socket] = field(default_factory=dict)

    def listen(self, name: str, ns: str, host: str, port: int) -> None:
        self.listeners[name] = listener(ns, host, port)

    def drain(self) -> None:
        for s in self.listeners.values():
            with contextlib.suppress(BlockingIOError):
                while True:
                    s.accept()[0].close()

    def landed(self, timeout: float = 3.0) -> tuple[str, socket.socket]:
        """Which listener the connection just made arrived at, and its accepted end."""
        by_fd = {s.fileno(): name for name, s in self.listeners.items()}
        ready, _, _ = select.select(list(by_fd), [], [], timeout)
        assert ready, "the connection reached none of the listeners"
        assert len(ready) == 1, f"more than one listener got a connection: {ready}"
        name = by_fd[ready[0]]
        conn, _ = self.listeners[name].accept()
        conn.settimeout(3)
        return name, conn

    def where(self, ns: str, host: str, port: int, mark: int | None = None) -> str:
        """Which listener a new connection from ``ns`` to ``host:port`` reaches."""
        self.drain()
        with connect(ns, host, port, mark):
            where, conn = self.landed()
            conn.close()
        return where

    def ns_exec(self, ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                              text=True, timeout=30)


@contextlib.contextmanager
def namespaces() -> Iterator[Pod]:
    # The checks proxy-init makes itself: privilege, iptables and ip.
    reason = init.why_not(init.InitConfig(), netns="any")
    if reason:
        pytest.skip(f"proxy-init {reason}")
    tag = uuid.uuid4().hex[:6]
    pod, peer = f"mtpi-pod-{tag}", f"mtpi-peer-{tag}"
    try:
        sh("ip", "netns", "add", pod)
    except RuntimeError as e:
        pytest.skip(f"cannot create a network namespace here: {e}")
    p = Pod(pod, peer)
    try:
        sh("ip", "netns", "add", peer)
        sh("ip", "link", "add", f"vpi{tag}", "netns", pod, "type", "veth",
           "peer", "name", f"vpe{tag}", "netns", peer)
        for ns, dev, ip in ((pod, f"vpi{tag}", POD_IP), (peer, f"vpe{tag}", PEER_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield p
    finally:
        for s in p.listeners.values():
            s.close()
        for ns in (pod, peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def netns() -> Iterator[Pod]:
    with namespaces() as p:
        yield p


@pytest.fixture(scope="module")
def meshed() -> Iterator[Pod]:
    """A pod namespace with the rules, a stand-in proxy (inbound 4143, outbound
    4140, admin 4191), an app (8080, and 2222 whose port is ignored inbound),
    and a peer (9090, and 5432 whose port is ignored outbound)."""
    with namespaces() as p:
        init.install(CONFIG, netns=p.pod)
        p.listen("inbound", p.pod, "0.0.0.0", CONFIG.inbound_port)
        p.listen("outbound", p.pod, "127.0.0.1", CONFIG.outbound_port)
        p.listen("admin", p.pod, "0.0.0.0", CONFIG.admin_port)
        p.listen("app", p.pod, "0.0.0.0", APP_PORT)
        p.listen("app-ignored", p.pod, "0.0.0.0", IGNORED_IN)
        p.listen("peer", p.peer, PEER_IP, PEER_PORT)
        p.listen("peer-ignored", p.peer, PEER_IP, IGNORED_OUT)
        yield p


# ---------------------------------------------------------------- the rules as installed


def test_install_puts_our_rules_in_our_chains_and_hooks_each_once(netns: Pod) -> None:
    ran = init.install(CONFIG, netns=netns.pod)
    assert ran == init.rules(CONFIG)  # a fresh namespace: exactly the documented commands
    saved = nat(netns.pod)
    assert ":MESHTUI_PROXY_INIT_REDIRECT - [0:0]" in saved.splitlines()
    assert ":MESHTUI_PROXY_INIT_OUTPUT - [0:0]" in saved.splitlines()
    hooks = [line for line in ours(saved) if line.startswith(("-A PREROUTING", "-A OUTPUT"))]
    assert len(hooks) == 2
    assert any(h.startswith("-A PREROUTING") and h.endswith("-j MESHTUI_PROXY_INIT_REDIRECT")
               for h in hooks)
    assert any(h.startswith("-A OUTPUT") and h.endswith("-j MESHTUI_PROXY_INIT_OUTPUT")
               for h in hooks)
    # What the kernel holds is what chain_rules says, rule for rule, in order.
    assert init.installed(CONFIG, netns=netns.pod) == init.chain_rules(CONFIG)
    inbound = "\n".join(line for line in saved.splitlines()
                        if line.startswith("-A MESHTUI_PROXY_INIT_REDIRECT"))
    assert f"--dports {IGNORED_IN},4190,4191 " in inbound
    assert "-j REDIRECT --to-ports 4143" in inbound
    assert f"--uid-owner {PROXY_UID}" in saved and f"--mark {MARK:#x}" in saved
    assert "-j REDIRECT --to-ports 4140" in saved


def test_cli_twice_leaves_one_set_of_rules(netns: Pod) -> None:
    # Someone else's rule in OUTPUT, which neither install nor uninstall may touch.
    sh("ip", "netns", "exec", netns.pod, "iptables", "-w", "-t", "nat", "-A", "OUTPUT",
       "-p", "udp", "--dport", "53", "-j", "RETURN")
    argv = [MESHTUI, "proxy-init", "--proxy-mark", hex(MARK)]
    first = netns.ns_exec(netns.pod, *argv)
    assert first.returncode == 0, first.stderr
    assert "proxy-init:" in first.stderr and len(first.stderr.splitlines()) == 1
    once = nat(netns.pod)
    second = netns.ns_exec(netns.pod, *argv, "--verbose")
    assert second.returncode == 0, second.stderr
    assert nat(netns.pod) == once
    # The rules were already right: not one iptables command ran the second time.
    assert second.stdout == "" and "already in place" in second.stderr
    assert "-A OUTPUT -p udp -m udp --dport 53 -j RETURN" in once
    assert sum(line.startswith("-A PREROUTING") for line in ours(once)) == 1


@pytest.mark.parametrize("backend", ["iptables-nft", "iptables-legacy"])
def test_each_backend_reads_back_what_it_installed(netns: Pod, backend: str) -> None:
    # A second run compares the rules iptables-save prints with the ones meant;
    # both of Debian's backends must print them the same way, or reruns would
    # refill the chains every time.
    if shutil.which(backend) is None:
        pytest.skip(f"no `{backend}` here")
    config = init.InitConfig(iptables=backend, proxy_mark=MARK,
                             outbound_ports_to_ignore=init.parse_ports("25,8000-8100"),
                             outbound_subnets_to_ignore=init.parse_subnets("10.96.0.0/12"))
    assert init.install(config, netns=netns.pod) == init.rules(config)
    assert init.installed(config, netns=netns.pod) == init.chain_rules(config)
    assert init.install(config, netns=netns.pod) == []
    init.uninstall(config, netns=netns.pod)
    assert init.installed(config, netns=netns.pod) == {}


def test_a_second_install_with_other_options_replaces_the_first(netns: Pod) -> None:
    init.install(CONFIG, netns=netns.pod)
    changed = init.InitConfig(outbound_port=15001, proxy_uid=PROXY_UID)
    init.install(changed, netns=netns.pod)
    assert init.installed(changed, netns=netns.pod) == init.chain_rules(changed)
    saved = nat(netns.pod)
    assert "--to-ports 15001" in saved and "--to-ports 4140" not in saved
    assert str(IGNORED_OUT) not in saved and "--mark" not in saved
    assert len([line for line in ours(saved) if line.startswith("-A OUTPUT")]) == 1


def test_stray_and_duplicate_hooks_are_replaced_by_one(netns: Pod) -> None:
    init.install(CONFIG, netns=netns.pod)
    # A duplicate hook without our comment, as a hand-made or older install leaves.
    sh("ip", "netns", "exec", netns.pod, "iptables", "-w", "-t", "nat", "-A", "PREROUTING",
       "-j", init.INBOUND_CHAIN)
    init.install(CONFIG, netns=netns.pod)
    hooks = [line for line in ours(nat(netns.pod)) if line.startswith("-A PREROUTING")]
    assert len(hooks) == 1 and "meshtui/install" in hooks[0]


def test_uninstall_removes_ours_and_only_ours(netns: Pod) -> None:
    sh("ip", "netns", "exec", netns.pod, "iptables", "-w", "-t", "nat", "-A", "PREROUTING",
       "-p", "tcp", "--dport", "7", "-j", "RETURN")
    before = nat(netns.pod)
    init.install(CONFIG, netns=netns.pod)
    done = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--uninstall")
    assert done.returncode == 0, done.stderr
    after = nat(netns.pod)
    assert ours(after) == []
    assert after == before
    again = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--uninstall")
    assert again.returncode == 0 and "no meshtui rules" in again.stderr


def test_dry_run_prints_the_commands_and_changes_nothing(netns: Pod) -> None:
    before = nat(netns.pod)
    dry = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert nat(netns.pod) == before
    assert dry.stdout.splitlines() == [shlex.join(c) for c in init.rules(init.InitConfig())]

    init.install(init.InitConfig(), netns=netns.pod)
    installed = nat(netns.pod)
    dry = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--dry-run")
    assert nat(netns.pod) == installed
    assert dry.returncode == 0 and dry.stdout == "" and "nothing to change" in dry.stderr
    dry = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--dry-run", "--outbound-port", "15001")
    assert nat(netns.pod) == installed
    lines = dry.stdout.splitlines()
    # Only the outbound chain differs: it alone is flushed and refilled, the
    # inbound chain and the hooks are left as they are.
    assert lines[0].endswith(f"-F {init.OUTBOUND_CHAIN}")
    assert all(f" -A {init.OUTBOUND_CHAIN} " in line for line in lines[1:])
    assert lines[-1].endswith("--to-ports 15001")
    dry = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--dry-run", "--uninstall")
    assert nat(netns.pod) == installed
    assert dry.stdout.splitlines()[-1].endswith(f"-X {init.OUTBOUND_CHAIN}")


def test_the_printed_commands_do_what_install_does(netns: Pod) -> None:
    dry = netns.ns_exec(netns.pod, MESHTUI, "proxy-init", "--dry-run", "--proxy-mark", "7")
    for line in dry.stdout.splitlines():
        sh("ip", "netns", "exec", netns.pod, *shlex.split(line))
    by_hand = nat(netns.pod)
    init.uninstall(init.InitConfig(), netns=netns.pod)
    init.install(init.InitConfig(proxy_mark=7), netns=netns.pod)
    assert nat(netns.pod) == by_hand


# ---------------------------------------------------------------- where connections go


def test_inbound_tcp_goes_to_the_inbound_port(meshed: Pod) -> None:
    meshed.drain()
    client = connect(meshed.peer, POD_IP, APP_PORT)
    with client:
        where, conn = meshed.landed()
        with conn:
            assert where == "inbound"
            # The proxy can tell where the client was going.
            assert original_dst(conn) == (POD_IP, APP_PORT)
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"


@pytest.mark.parametrize(("port", "expect"), [(4191, "admin"), (IGNORED_IN, "app-ignored")])
def test_ignored_inbound_ports_reach_their_listener(meshed: Pod, port: int, expect: str
                                                   ) -> None:
    assert meshed.where(meshed.peer, POD_IP, port) == expect


def test_outbound_tcp_goes_to_the_outbound_port(meshed: Pod) -> None:
    meshed.drain()
    with connect(meshed.pod, PEER_IP, PEER_PORT):
        where, conn = meshed.landed()
        with conn:
            assert where == "outbound"
            assert original_dst(conn) == (PEER_IP, PEER_PORT)


def test_ignored_outbound_port_goes_straight_out(meshed: Pod) -> None:
    assert meshed.where(meshed.pod, PEER_IP, IGNORED_OUT) == "peer-ignored"


def test_the_proxys_marked_connections_are_not_redirected(meshed: Pod) -> None:
    assert meshed.where(meshed.pod, PEER_IP, PEER_PORT, mark=MARK) == "peer"


# Connects as the proxy's user (set after Python has loaded, so that the
# interpreter's own files need not be readable by that user).
AS_PROXY_USER = """
import encodings.idna, os, socket, sys
os.setgroups([]); os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]))
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3)
s.sendall(b"uid %d" % os.getuid())
s.settimeout(3)
s.recv(1)
"""


def _as_proxy_user(p: Pod, host: str, port: int) -> tuple[str, bytes]:
    proc = subprocess.Popen(["ip", "netns", "exec", p.pod, sys.executable, "-c", AS_PROXY_USER,
                             str(PROXY_UID), host, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        where, conn = p.landed()
        with conn:
            said = conn.recv(64)
        return where, said
    finally:
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 0, err.decode()


def test_the_proxy_users_connections_out_are_not_redirected(meshed: Pod) -> None:
    meshed.drain()
    where, said = _as_proxy_user(meshed, PEER_IP, PEER_PORT)
    assert (where, said) == ("peer", f"uid {PROXY_UID}".encode())


def test_the_proxy_reaches_the_app_over_loopback_directly(meshed: Pod) -> None:
    meshed.drain()
    assert _as_proxy_user(meshed, "127.0.0.1", APP_PORT)[0] == "app"


def test_the_proxy_calling_its_own_pod_address_goes_through_the_inbound_side(
        meshed: Pod) -> None:
    # The app called itself through its service; the outbound proxy picked this pod.
    meshed.drain()
    assert _as_proxy_user(meshed, POD_IP, APP_PORT)[0] == "inbound"


@pytest.mark.parametrize("host", ["127.0.0.1", POD_IP])
def test_the_app_reaches_itself_directly(meshed: Pod, host: str) -> None:
    assert meshed.where(meshed.pod, host, APP_PORT) == "app"


def test_udp_is_left_alone(meshed: Pod) -> None:
    got = in_netns(meshed.peer, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    got.bind((PEER_IP, 0))
    got.settimeout(3)
    sender = in_netns(meshed.pod, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with got, sender:
        sender.sendto(b"dns?", got.getsockname())
        assert got.recvfrom(16)[0] == b"dns?"


def test_after_uninstall_connections_go_where_they_were_sent(netns: Pod) -> None:
    init.install(CONFIG, netns=netns.pod)
    netns.listen("inbound", netns.pod, "0.0.0.0", CONFIG.inbound_port)
    netns.listen("app", netns.pod, "0.0.0.0", APP_PORT)
    for expect in ("inbound", "app"):
        assert netns.where(netns.peer, POD_IP, APP_PORT) == expect
        init.uninstall(CONFIG, netns=netns.pod)
