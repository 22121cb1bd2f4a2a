"""The iptables NAT rules that send a pod's TCP traffic through its proxy.

This is what ``meshtui proxy-init`` (the pod's init container) installs in the
pod's network namespace, in two chains of its own so that they can be told
apart from anyone else's rules, refilled and removed::

    PREROUTING ─▶ MESHTUI_PROXY_INIT_REDIRECT   (TCP arriving at the pod)
        the proxy's tap and admin ports, and the ports to ignore → RETURN
        everything else                          → REDIRECT to the inbound port (4143)

    OUTPUT ────▶ MESHTUI_PROXY_INIT_OUTPUT      (TCP the pod's processes open)
        the proxy, to its own pod's address over lo → MESHTUI_PROXY_INIT_REDIRECT
        the proxy's other connections           → RETURN
        anything else over lo (the app itself)  → RETURN
        the ports and subnets to ignore         → RETURN
        everything else                         → REDIRECT to the outbound port (4140)

How the rules know the proxy's own connections, so that they are not sent
back into the proxy in a loop: by the socket owner's UID (``-m owner
--uid-owner``; the proxy runs as that user, 2102 by default as in Linkerd,
and needs nothing else) and, when a mark is given, by the socket mark (``-m
mark --mark``; the proxy sets ``SO_MARK`` on every connection it opens, with
``meshtui proxy --mark``, which needs CAP_NET_ADMIN). Either one is enough.

The chain and rule layout follows Linkerd's proxy-init, for the same reasons
(see the comments in :func:`chain_rules`). IPv4 only.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshtui.errors import RuntimeFailure, UsageError

INBOUND_CHAIN = "MESHTUI_PROXY_INIT_REDIRECT"
OUTBOUND_CHAIN = "MESHTUI_PROXY_INIT_OUTPUT"
CHAINS = (INBOUND_CHAIN, OUTBOUND_CHAIN)
# The built-in chain each of ours hangs from.
HOOKS = (("PREROUTING", INBOUND_CHAIN), ("OUTPUT", OUTBOUND_CHAIN))

DEFAULT_PROXY_UID = 2102  # Linkerd's: a UID no image is likely to use for its app
DEFAULT_INBOUND_PORT = 4143
DEFAULT_OUTBOUND_PORT = 4140
DEFAULT_TAP_PORT = 4190
DEFAULT_ADMIN_PORT = 4191

# A multiport match takes at most 15 ports, a range counting as two.
_MULTIPORT_SLOTS = 15
_WAIT = ["-w", "5"]  # iptables-legacy's lock is global, shared by every namespace
_CAP_NET_ADMIN = 12


@dataclass(frozen=True, order=True)
class PortRange:
    """One port (``first == last``) or an inclusive range of ports."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"

    @property
    def slots(self) -> int:
        return 1 if self.first == self.last else 2


def _split(text: str | Iterable[str]) -> list[str]:
    """Comma- or space-separated lists, one string or several, as their parts."""
    parts: list[str] = []
    for chunk in [text] if isinstance(text, str) else text:
        parts += [p.strip() for p in chunk.replace(" ", ",").split(",") if p.strip()]
    return parts


def parse_ports(text: str | Iterable[str], what: str = "ports") -> tuple[PortRange, ...]:
    """``"4190,4191,8000-8100"`` (or several such strings) → sorted, deduplicated ranges.

    Raises:
        UsageError: a part that is not a port or a range of ports.
    """
    parts = _split(text)
    out: set[PortRange] = set()
    for part in parts:
        lo, sep, hi = part.partition("-")
        if not sep:
            lo, sep, hi = part.partition(":")
        try:
            first = int(lo)
            last = int(hi) if sep else first
        except ValueError:
            raise UsageError(f"{what}: {part!r} is not a port or a range "
                             "of ports (like 8080 or 8000-8100)") from None
        if not (1 <= first <= last <= 65535):
            raise UsageError(f"{what}: {part!r} is not within 1-65535 "
                             "(a range goes from low to high)")
        out.add(PortRange(first, last))
    return tuple(sorted(out))


def parse_subnets(text: str | Iterable[str], what: str = "subnets") -> tuple[str, ...]:
    """``"10.0.0.0/8,192.168.1.5"`` → IPv4 networks in CIDR form.

    Raises:
        UsageError: a part that is not an IPv4 address or network.
    """
    parts = _split(text)
    out: list[str] = []
    for part in parts:
        try:
            net = ipaddress.IPv4Network(part, strict=False)
        except ValueError:
            raise UsageError(f"{what}: {part!r} is not an IPv4 address "
                             "or network (like 10.0.0.0/8)") from None
        if str(net) not in out:
            out.append(str(net))
    return tuple(out)


@dataclass(frozen=True)
class InitConfig:
    """What the rules redirect, and what they leave alone.

    Attributes:
        inbound_port: the proxy's inbound listener; TCP arriving at the pod goes here.
        outbound_port: the proxy's outbound listener; TCP the pod opens goes here.
        tap_port, admin_port: the proxy's own endpoints, never redirected inbound.
        proxy_uid: the UID the proxy runs as; its connections are not redirected.
            None: rely on ``proxy_mark`` alone.
        proxy_mark: the SO_MARK the proxy puts on its connections; those are not
            redirected either. None: rely on ``proxy_uid`` alone.
        inbound_ports_to_ignore: destination ports of incoming TCP left alone.
        outbound_ports_to_ignore: destination ports of outgoing TCP left alone.
        outbound_subnets_to_ignore: destination networks of outgoing TCP left alone.
        iptables: the iptables binary (``iptables``, ``iptables-legacy``, ``iptables-nft``);
            its ``-save`` sibling reads the current rules.
    """

    inbound_port: int = DEFAULT_INBOUND_PORT
    outbound_port: int = DEFAULT_OUTBOUND_PORT
    tap_port: int = DEFAULT_TAP_PORT
    admin_port: int = DEFAULT_ADMIN_PORT
    proxy_uid: int | None = DEFAULT_PROXY_UID
    proxy_mark: int | None = None
    inbound_ports_to_ignore: tuple[PortRange, ...] = ()
    outbound_ports_to_ignore: tuple[PortRange, ...] = ()
    outbound_subnets_to_ignore: tuple[str, ...] = ()
    iptables: str = "iptables"

    def __post_init__(self) -> None:
        for name in ("inbound_port", "outbound_port", "tap_port", "admin_port"):
            port = getattr(self, name)
            if not (isinstance(port, int) and 1 <= port <= 65535):
                raise UsageError(f"proxy-init: --{name.replace('_', '-')} must be a port "
                                 f"from 1 to 65535, not {port!r}")
        if self.proxy_uid is None and self.proxy_mark is None:
            raise UsageError("proxy-init: the proxy's own traffic must be told apart by "
                             "--proxy-uid or --proxy-mark (or both); without either it "
                             "would loop back into the proxy")
        if self.proxy_uid is not None and not 0 <= self.proxy_uid < 1 << 32:
            raise UsageError(f"proxy-init: --proxy-uid must be a UID, not {self.proxy_uid!r}")
        if self.proxy_mark is not None and not 0 < self.proxy_mark < 1 << 32:
            raise UsageError("proxy-init: --proxy-mark must be from 1 to 2^32-1, "
                             f"not {self.proxy_mark!r}")
        if not self.iptables or any(c.isspace() for c in self.iptables):
            raise UsageError(f"proxy-init: --iptables {self.iptables!r} is not a command name")

    @property
    def save_command(self) -> str:
        return f"{self.iptables}-save"


def _comment(text: str) -> list[str]:
    # Every rule says whose it is: `iptables-save` then reads as its own explanation.
    return ["-m", "comment", "--comment", f"meshtui/{text}"]


def _multiport(ports: Sequence[PortRange]) -> list[list[str]]:
    """Port lists split into groups a multiport match accepts."""
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    for p in ports:
        if used + p.slots > _MULTIPORT_SLOTS:
            groups.append(current)
            current, used = [], 0
        current.append(str(p))
        used += p.slots
    if current:
        groups.append(current)
    return [["-m", "multiport", "--dports", ",".join(g)] for g in groups]


def _ignore_ports(ports: Sequence[PortRange], name: str) -> list[list[str]]:
    return [["-p", "tcp", *match, *_comment(name), "-j", "RETURN"]
            for match in _multiport(ports)]


def chain_rules(config: InitConfig) -> dict[str, list[list[str]]]:
    """The rules of each of our chains, in order, each without its ``-A CHAIN``.

    Matches are written in the order ``iptables-save`` prints them, so that what
    was installed can be compared with what is meant to be.
    """
    inbound_ignored = sorted({PortRange(config.tap_port, config.tap_port),
                              PortRange(config.admin_port, config.admin_port),
                              *config.inbound_ports_to_ignore})
    inbound = [
        # The proxy's own endpoints are reached directly: the controller scrapes
        # and taps them, the kubelet probes them.
        *_ignore_ports(inbound_ignored, "ignore-inbound-ports"),
        ["-p", "tcp", *_comment("redirect-all-incoming-to-proxy-port"),
         "-j", "REDIRECT", "--to-ports", str(config.inbound_port)],
    ]

    owners: list[tuple[str, list[str]]] = []
    if config.proxy_uid is not None:
        owners.append(("proxy-uid", ["-m", "owner", "--uid-owner", str(config.proxy_uid)]))
    if config.proxy_mark is not None:
        owners.append(("proxy-mark", ["-m", "mark", "--mark", hex(config.proxy_mark)]))
    outbound: list[list[str]] = []
    for name, match in owners:
        # The proxy calling an address of its own pod that is not 127.0.0.1: the
        # app reached itself through its service, the outbound proxy picked this
        # pod as the endpoint. Such a connection leaves through lo, and locally
        # delivered packets never pass PREROUTING's NAT (the connection was
        # already NATed in OUTPUT), so without this rule it would skip the inbound
        # proxy. Send it through the inbound chain, as if it had come from outside.
        outbound.append(["!", "-d", "127.0.0.1/32", "-o", "lo", *match,
                         *_comment(f"redirect-non-loopback-local-traffic-{name}"),
                         "-j", INBOUND_CHAIN])
        # Every other connection of the proxy is its own work: its upstream calls
        # and its hand-off to the app on 127.0.0.1. Redirecting them would loop.
        outbound.append([*match, *_comment(f"ignore-{name}"), "-j", "RETURN"])
    # Anyone else over lo: the app calling itself (127.0.0.1, or its own pod
    # address, which routes over lo too) stays direct, as it would without a mesh.
    outbound.append(["-o", "lo", *_comment("ignore-loopback"), "-j", "RETURN"])
    outbound += _ignore_ports(config.outbound_ports_to_ignore, "ignore-outbound-ports")
    outbound += [["-d", net, *_comment("ignore-outbound-subnet"), "-j", "RETURN"]
                 for net in config.outbound_subnets_to_ignore]
    outbound.append(["-p", "tcp", *_comment("redirect-all-outgoing-to-proxy-port"),
                     "-j", "REDIRECT", "--to-ports", str(config.outbound_port)])
    return {INBOUND_CHAIN: inbound, OUTBOUND_CHAIN: outbound}


def hook_rule(chain: str) -> list[str]:
    """The rule (without ``-A BUILTIN``) that jumps from a built-in chain to ours."""
    return [*_comment(f"install-{chain.lower().replace('_', '-')}"), "-j", chain]


def _cmd(config: InitConfig, *args: str) -> list[str]:
    return [config.iptables, *_WAIT, "-t", "nat", *args]


# ---------------------------------------------------------------- the nat table as it is


@dataclass(frozen=True)
class NatTable:
    """The parts of ``iptables-save -t nat`` that matter to us."""

    chains: frozenset[str]
    rules: tuple[tuple[str, tuple[str, ...]], ...]  # (chain, spec without -A chain)

    @classmethod
    def parse(cls, saved: str) -> NatTable:
        chains: set[str] = set()
        rules: list[tuple[str, tuple[str, ...]]] = []
        in_nat = False
        for line in saved.splitlines():
            if line.startswith("*"):
                in_nat = line.strip() == "*nat"
            elif not in_nat:
                continue
            elif line.startswith(":"):
                chains.add(line[1:].split()[0])
            elif line.startswith("-A "):
                words = shlex.split(line)
                rules.append((words[1], tuple(words[2:])))
        return cls(frozenset(chains), tuple(rules))

    def jumps_to(self, target: str) -> list[tuple[str, tuple[str, ...]]]:
        """Rules of chains other than ours that jump to ``target``."""
        out = []
        for chain, spec in self.rules:
            if chain in CHAINS:
                continue
            for i, word in enumerate(spec[:-1]):
                if word in ("-j", "--jump", "-g", "--goto") and spec[i + 1] == target:
                    out.append((chain, spec))
                    break
        return out

    def chain(self, name: str) -> list[list[str]]:
        return [list(spec) for chain, spec in self.rules if chain == name]


EMPTY = NatTable(frozenset(), ())


# ---------------------------------------------------------------- plans


def rules(config: InitConfig) -> list[list[str]]:
    """Every iptables command an install runs in a namespace without our rules."""
    return plan_install(config, EMPTY)


def plan_install(config: InitConfig, table: NatTable) -> list[list[str]]:
    """The commands that bring ``table`` to exactly one set of our rules.

    A chain of ours that is missing is created and filled; one that holds other
    rules is flushed and refilled; one that already holds exactly these rules is
    left alone, so that running again with the same options changes nothing (and
    no connection meets a half-filled chain on a live pod). Each hook is added
    unless exactly that one hook is there already (stray or duplicate hooks are
    removed first). On a fresh namespace the hooks come last: no packet meets a
    chain before it is filled.
    """
    cmds: list[list[str]] = []
    wanted = chain_rules(config)
    stale = [c for c in CHAINS if c not in table.chains or table.chain(c) != wanted[c]]
    for chain in stale:
        cmds.append(_cmd(config, "-F" if chain in table.chains else "-N", chain))
    for chain in stale:
        cmds += [_cmd(config, "-A", chain, *spec) for spec in wanted[chain]]
    for builtin, chain in HOOKS:
        want = hook_rule(chain)
        have = table.jumps_to(chain)
        if have == [(builtin, tuple(want))]:
            continue
        cmds += [_cmd(config, "-D", c, *spec) for c, spec in have]
        cmds.append(_cmd(config, "-A", builtin, *want))
    return cmds


def plan_uninstall(config: InitConfig, table: NatTable | None) -> list[list[str]]:
    """The commands that remove our hooks and chains from ``table``.

    ``table`` None: as if everything we install were there (for ``--dry-run``
    when the rules cannot be read).
    """
    cmds: list[list[str]] = []
    if table is None:
        for builtin, chain in HOOKS:
            cmds.append(_cmd(config, "-D", builtin, *hook_rule(chain)))
        present = set(CHAINS)
    else:
        for chain in CHAINS:
            cmds += [_cmd(config, "-D", c, *spec) for c, spec in table.jumps_to(chain)]
        present = set(CHAINS) & table.chains
    # Flush both before deleting either: our OUTPUT chain jumps to the other one.
    cmds += [_cmd(config, "-F", c) for c in CHAINS if c in present]
    cmds += [_cmd(config, "-X", c) for c in CHAINS if c in present]
    return cmds


# ---------------------------------------------------------------- running them


def _has_net_admin() -> bool:
    """Whether this process holds CAP_NET_ADMIN (root usually does, but not always:
    a container's root may have had it dropped)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0  # no /proc to tell: take root's word


def _find(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin"):  # not on a plain user's PATH
        if os.access(os.path.join(d, tool), os.X_OK):
            return os.path.join(d, tool)
    return None


def why_not(config: InitConfig, netns: str | None = None) -> str | None:
    """None when this process can change the rules; otherwise the reason why not."""
    needed = [config.iptables, config.save_command] + (["ip"] if netns else [])
    for tool in needed:
        if _find(tool) is None:
            package = "iproute2" if tool == "ip" else "iptables"
            return f"needs the `{tool}` command (Debian package {package})"
    if not _has_net_admin():
        return "needs root or CAP_NET_ADMIN to change iptables rules"
    if netns is not None and os.geteuid() != 0:
        return "needs root to enter a network namespace (--netns)"
    return None


def _exec(argv: list[str], netns: str | None) -> subprocess.CompletedProcess[str]:
    real = [_find(argv[0]) or argv[0], *argv[1:]]
    if netns is not None:
        real = [_find("ip") or "ip", "netns", "exec", netns, *real]
    try:
        return subprocess.run(real, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeFailure(f"proxy-init: `{shlex.join(argv)}` did not run: {e}") from None


def _check(argv: list[str], out: subprocess.CompletedProcess[str]) -> None:
    if out.returncode != 0:
        detail = " ".join((out.stderr or out.stdout).split()) or f"exit {out.returncode}"
        raise RuntimeFailure(f"proxy-init: `{shlex.join(argv)}` failed: {detail}")


def read_table(config: InitConfig, netns: str | None = None) -> NatTable:
    """The nat table of the current namespace (or of ``netns``).

    Raises:
        RuntimeFailure: no privilege, no iptables, or iptables-save failed.
    """
    why = why_not(config, netns)
    if why:
        raise RuntimeFailure(f"proxy-init: {why}")
    argv = [config.save_command, "-t", "nat"]
    out = _exec(argv, netns)
    _check(argv, out)
    return NatTable.parse(out.stdout)


def apply(cmds: list[list[str]], netns: str | None = None) -> None:
    """Runs the commands in order; the first failure stops them."""
    for argv in cmds:
        _check(argv, _exec(argv, netns))


def install(config: InitConfig, netns: str | None = None) -> list[list[str]]:
    """Installs (or refreshes) the rules; returns the commands it ran.

    Args:
        config: what to redirect and what to leave alone.
        netns: a named network namespace (``ip netns``) to install into; None:
            this process's own.

    Raises:
        RuntimeFailure: no privilege, no iptables, or a command failed.
    """
    cmds = plan_install(config, read_table(config, netns))
    apply(cmds, netns)
    return cmds


def uninstall(config: InitConfig, netns: str | None = None) -> list[list[str]]:
    """Removes our hooks and chains (none there: nothing to do); returns the commands run."""
    cmds = plan_uninstall(config, read_table(config, netns))
    apply(cmds, netns)
    return cmds


def installed(config: InitConfig, netns: str | None = None) -> dict[str, list[list[str]]]:
    """Our chains' rules as the kernel holds them (chains absent: not in the result)."""
    table = read_table(config, netns)
    return {c: table.chain(c) for c in CHAINS if c in table.chains}
