"""meshtui proxy-init: what the init container runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshtui.proxy.init import InitConfig

HELP = "install the iptables rules that send a pod's traffic through its proxy"
DESCRIPTION = """\
Installs iptables NAT rules in the current network namespace (a pod's) so that
its TCP traffic passes through its proxy: TCP arriving at the pod goes to the
proxy's inbound port, TCP the pod opens goes to its outbound port. The rules
live in chains of their own, MESHTUI_PROXY_INIT_REDIRECT (from PREROUTING) and
MESHTUI_PROXY_INIT_OUTPUT (from OUTPUT); running it again refills them, so
there is always one set.

The proxy's own connections are left alone: those of the user --proxy-uid (run
the proxy as that user), and, with --proxy-mark, those carrying that socket
mark (run `meshtui proxy --mark` with the same value). The proxy's tap and admin
ports are never redirected inbound, nor is traffic over loopback, so the app
still reaches itself directly.

Run it where the rules belong: in a pod's network namespace, or name one with
--netns. In a machine's own namespace it would send all of that machine's
outgoing TCP to the outbound port.

Every option can also come from the environment variable named in its help.
Needs root or CAP_NET_ADMIN (NET_RAW too in a container), and `iptables`."""

# flag destination → environment variable
ENV = {
    "inbound_port": "MESHTUI_INBOUND_PORT",
    "outbound_port": "MESHTUI_OUTBOUND_PORT",
    "tap_port": "MESHTUI_TAP_PORT",
    "admin_port": "MESHTUI_ADMIN_PORT",
    "proxy_uid": "MESHTUI_PROXY_UID",
    "proxy_mark": "MESHTUI_PROXY_MARK",
    "inbound_ports_to_ignore": "MESHTUI_INBOUND_PORTS_TO_IGNORE",
    "outbound_ports_to_ignore": "MESHTUI_OUTBOUND_PORTS_TO_IGNORE",
    "outbound_subnets_to_ignore": "MESHTUI_OUTBOUND_SUBNETS_TO_IGNORE",
    "iptables": "MESHTUI_IPTABLES",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    def opt(key: str, help_: str, metavar: str, many: bool = False) -> None:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar=metavar,
                       action="append" if many else "store",
                       help=f"{help_} (env {ENV[key]})")

    opt("inbound_port", "the proxy's inbound port: TCP arriving at the pod goes there "
        "(default 4143)", "PORT")
    opt("outbound_port", "the proxy's outbound port: TCP the pod opens goes there "
        "(default 4140)", "PORT")
    opt("tap_port", "the proxy's tap port, never redirected inbound (default 4190)", "PORT")
    opt("admin_port", "the proxy's admin port, never redirected inbound (default 4191)",
        "PORT")
    opt("proxy_uid", "the user the proxy runs as: its connections are not redirected "
        "(default 2102; 'none' with --proxy-mark)", "UID")
    opt("proxy_mark", "the socket mark the proxy puts on its connections (meshtui proxy "
        "--mark): those are not redirected either (decimal or 0x..)", "MARK")
    opt("inbound_ports_to_ignore", "incoming TCP to these ports goes straight to the "
        "app (comma-separated, ranges like 8000-8100; repeatable)", "PORTS", many=True)
    opt("outbound_ports_to_ignore", "outgoing TCP to these ports goes straight out "
        "(comma-separated, ranges; repeatable)", "PORTS", many=True)
    opt("outbound_subnets_to_ignore", "outgoing TCP to these IPv4 networks goes "
        "straight out (comma-separated CIDRs; repeatable)", "CIDRS", many=True)
    opt("iptables", "the iptables command (iptables, iptables-legacy, iptables-nft; "
        "default iptables)", "CMD")
    p.add_argument("--netns", metavar="NAME",
                   help="work in this named network namespace (ip netns) instead of "
                   "the current one")
    p.add_argument("--dry-run", action="store_true",
                   help="print the iptables commands it would run, change nothing")
    p.add_argument("--uninstall", action="store_true",
                   help="remove the rules (the hooks and both chains)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each iptables command as it runs")


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None
                     ) -> InitConfig:
    """Flags first, then environment variables, then defaults.

    Raises:
        UsageError: a value that is not what its option takes.
    """
    from meshtui.errors import UsageError
    from meshtui.proxy.init import InitConfig, parse_ports, parse_subnets

    env = os.environ if environ is None else environ

    def get(key: str) -> str | None:
        v = getattr(args, key, None)
        if isinstance(v, list):
            v = ",".join(v)
        if v is None:
            v = env.get(ENV[key]) or None
        return v

    def number(key: str, default: int | None, base: int = 10) -> int | None:
        v = get(key)
        if v is None:
            return default
        if key == "proxy_uid" and v.strip().lower() in ("none", "off"):
            return None
        try:
            return int(v.strip(), base)
        except ValueError:
            flag = f"--{key.replace('_', '-')}"
            raise UsageError(f"proxy-init: {flag} must be a whole number, not {v!r}") from None

    d = InitConfig()
    kw: dict[str, object] = {
        key: number(key, getattr(d, key))
        for key in ("inbound_port", "outbound_port", "tap_port", "admin_port", "proxy_uid")
    }
    kw["proxy_mark"] = number("proxy_mark", None, base=0)
    for key in ("inbound_ports_to_ignore", "outbound_ports_to_ignore"):
        v = get(key)
        kw[key] = parse_ports(v, f"proxy-init: --{key.replace('_', '-')}") if v else ()
    v = get("outbound_subnets_to_ignore")
    kw["outbound_subnets_to_ignore"] = (
        parse_subnets(v, "proxy-init: --outbound-subnets-to-ignore") if v else ())
    kw["iptables"] = get("iptables") or "iptables"
    return InitConfig(**kw)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    import shlex

    from meshtui.errors import RuntimeFailure
    from meshtui.proxy import init

    config = config_from_args(args)
    netns = args.netns
    if args.dry_run:
        # The exact commands for the rules as they are now; when they cannot be
        # read (no privilege), those for a namespace without ours, as an init
        # container finds it.
        table: init.NatTable | None
        try:
            table = init.read_table(config, netns)
        except RuntimeFailure as e:
            print(f"meshtui: {e} — showing the commands for a namespace without "
                  "meshtui's rules", file=sys.stderr)
            table = None
        if args.uninstall:
            cmds = init.plan_uninstall(config, table)
        else:
            cmds = init.plan_install(config, table or init.EMPTY)
        for argv in cmds:
            print(shlex.join(argv))
        if table is not None and not cmds:
            print("meshtui: proxy-init: nothing to change, the rules are as asked",
                  file=sys.stderr)
        return 0

    table = init.read_table(config, netns)
    if args.uninstall:
        cmds = init.plan_uninstall(config, table)
    else:
        cmds = init.plan_install(config, table)
    for argv in cmds:
        if args.verbose:
            print(shlex.join(argv), flush=True)
        init.apply([argv], netns)
    where = f"network namespace {netns}" if netns else "this network namespace"
    if args.uninstall:
        what = "removed meshtui's rules" if cmds else "no meshtui rules to remove"
    elif not cmds:
        what = "meshtui's rules already in place, nothing changed"
    else:
        skipped = " and ".join(
            ([f"uid {config.proxy_uid}"] if config.proxy_uid is not None else [])
            + ([f"mark {config.proxy_mark:#x}"] if config.proxy_mark is not None else []))
        what = (f"TCP in → :{config.inbound_port}, TCP out → :{config.outbound_port}, "
                f"the proxy's own ({skipped}) left alone")
    print(f"proxy-init: {what} in {where}", file=sys.stderr)
    return 0
