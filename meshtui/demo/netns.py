"""Network namespaces for the demo's iptables mode: one per pod, like a node's.

Layout (all made by the demo, all removed when it stops)::

    root ns ── veth ──┐
                      │   bridge in the "node" namespace
    pod ns 1 ── veth ─┤   10.77.0.0/24: root side .254, pods from .10
    pod ns 2 ── veth ─┘

(``10.77.N.0/24``: the first N whose addresses no interface of the host holds yet, so
that two demos at once each have their own.)

Each pod gets its own namespace with ``eth0`` on the bridge and loopback, so
its app, its proxy and ``proxy-init``'s iptables rules are its own, as in a
Kubernetes pod. The root namespace's end of the bridge lets ``meshtui`` on
the host reach the controller's pod. Traffic never leaves these interfaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from meshtui.errors import RuntimeFailure

_SUBNET_LOCK = "/run/meshtui-demo-subnet.lock"


def _ip(*args: str, netns: str | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeFailure(f"demo: `{' '.join(cmd)}` failed: {out.stderr.strip()}")
    return out


def can_make_namespaces() -> str | None:
    """None when this process can build the layout; otherwise the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for tool, package in (("ip", "iproute2"), ("iptables", "iptables")):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"needs the `{tool}` command (Debian package {package})"
    probe = f"mtprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def free_subnet(base: str = "10.77") -> str:
    """The first ``base.N`` (a /24) that overlaps no /24-or-narrower network of the host's
    interfaces or routes, nor an address of them: another demo's bridge, a site network
    as narrow. (A broader route, a site's ``10.0.0.0/8``, is no obstacle: the demo's own
    /24 route is more specific and wins for its addresses.)"""
    used = []
    text = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    for word in re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", text):
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(word, strict=False)
            if net.prefixlen >= 24:
                used.append(net)
    for n in range(256):
        mine = ipaddress.ip_network(f"{base}.{n}.0/24")
        if not any(mine.overlaps(u) for u in used):
            return f"{base}.{n}"
    raise RuntimeFailure(f"demo: every {base}.N.0/24 is in use on this host")


@dataclass
class PodNetwork:
    """Builds and tears down the namespaces; names are prefixed per run."""

    prefix: str = field(default_factory=lambda: f"mt{os.getpid() % 100000}")
    subnet: str = ""  # chosen by setup(): see free_subnet()
    namespaces: list[str] = field(default_factory=list)
    _next_host: int = 10

    @property
    def node(self) -> str:
        return f"{self.prefix}-node"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"[:15]

    @property
    def root_if(self) -> str:
        return f"{self.prefix}h"[:15]

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.254"

    def setup(self) -> None:
        why = can_make_namespaces()
        if why:
            raise RuntimeFailure(f"demo: --intercept iptables {why}")
        # Chosen and taken under one lock, so that two demos starting at once each
        # find the other's address in place.
        with open(_SUBNET_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.subnet:
                self.subnet = free_subnet()
            self._setup()

    def _setup(self) -> None:
        _ip("netns", "add", self.node)
        self.namespaces.append(self.node)
        _ip("link", "add", self.bridge, "type", "bridge", netns=self.node)
        _ip("link", "set", self.bridge, "up", netns=self.node)
        # The root namespace's port on the bridge.
        peer = f"{self.prefix}hp"[:15]
        _ip("link", "add", self.root_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.node)
        _ip("link", "set", peer, "master", self.bridge, netns=self.node)
        _ip("link", "set", peer, "up", netns=self.node)
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self.root_if)
        _ip("link", "set", self.root_if, "up")

    def add_pod(self, label: str) -> tuple[str, str]:
        """A new pod namespace on the bridge: (namespace name, its IP)."""
        n = self._next_host
        self._next_host += 1
        if n > 250:
            raise RuntimeFailure("demo: more pods than the demo's /24 holds")
        ns = f"{self.prefix}-{label}"
        ip = f"{self.subnet}.{n}"
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        inside, outside = f"{self.prefix}p{n}"[:15], f"{self.prefix}q{n}"[:15]
        _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", outside, "netns", self.node)
        _ip("link", "set", outside, "master", self.bridge, netns=self.node)
        _ip("link", "set", outside, "up", netns=self.node)
        _ip("link", "set", inside, "name", "eth0", netns=ns)
        _ip("addr", "add", f"{ip}/24", "dev", "eth0", netns=ns)
        _ip("link", "set", "eth0", "up", netns=ns)
        _ip("link", "set", "lo", "up", netns=ns)
        _ip("route", "add", "default", "via", self.host_ip, netns=ns)
        return ns, ip

    @staticmethod
    def exec_prefix(ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def teardown(self) -> None:
        """Removes every namespace and the root's veth (removing one end removes both)."""
        with contextlib.suppress(Exception):
            _ip("link", "del", self.root_if, check=False)
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()
