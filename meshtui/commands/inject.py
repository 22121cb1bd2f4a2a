"""meshtui inject: add the sidecar to Kubernetes YAML."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshtui.inject import InjectConfig

HELP = "add the proxy sidecar and its init container to Kubernetes YAML"
DESCRIPTION = """\
Reads Kubernetes YAML (a file, or - for standard input) and writes it to
standard output with the mesh added to every workload — Pod, Deployment,
StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, in
every document and inside `kind: List`: the meshtui-proxy sidecar (as the
user --proxy-uid) and, first of the init containers, meshtui-init, which runs
`meshtui proxy-init` to send the pod's TCP traffic through the proxy. The pod
template is annotated meshtui.io/proxy-version, which marks it as injected.

Documents without a workload come out byte for byte as they went in; changed
ones keep their comments, key order, quoting and, line for line, their
spelling (a document the YAML round trip would alter is not changed at all).
Left alone, with the reason:
workloads already injected, those with hostNetwork: true, and pods annotated
meshtui.io/inject: disabled (or linkerd.io/inject: disabled). A pod's
annotations meshtui.io/skip-inbound-ports and meshtui.io/skip-outbound-ports
add ports its rules leave alone. One line per workload goes to standard error.

  meshtui inject app.yaml | kubectl apply -f -"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Not imported from meshtui.inject: that brings ruamel.yaml into every --help.
    from meshtui import __version__

    p.add_argument("file", metavar="FILE|-", help="a YAML file, or - for standard input")
    p.add_argument("--proxy-image", "--image", dest="image",
                   default=f"ghcr.io/meshtui/meshtui:{__version__}",
                   help="the image of both containers (default %(default)s)")
    p.add_argument("--image-pull-policy", default="IfNotPresent",
                   choices=("Always", "IfNotPresent", "Never"),
                   help="(default %(default)s)")
    p.add_argument("--proxy-uid", type=int, default=2102, metavar="UID",
                   help="the user the proxy runs as, whose traffic the rules skip "
                   "(default %(default)s)")
    for name, default in (("inbound", 4143), ("outbound", 4140), ("tap", 4190),
                          ("admin", 4191)):
        p.add_argument(f"--{name}-port", type=int, default=default, metavar="PORT",
                       help=f"the proxy's {name} port (default %(default)s)")
    p.add_argument("--skip-inbound-ports", action="append", default=[], metavar="PORTS",
                   help="incoming ports that bypass the proxy in every pod "
                   "(comma-separated, ranges like 8000-8100; repeatable)")
    p.add_argument("--skip-outbound-ports", action="append", default=[], metavar="PORTS",
                   help="outgoing ports that bypass the proxy in every pod (e.g. 3306)")
    # Literal defaults: meshtui.inject.sidecar holds the same, but importing it
    # here would bring ruamel.yaml into every --help.
    p.add_argument("--proxy-cpu-request", default="100m", metavar="QUANTITY",
                   help="the CPU the scheduler reserves for each proxy (default %(default)s)")
    p.add_argument("--proxy-memory-request", default="64Mi", metavar="QUANTITY",
                   help="the memory the scheduler reserves for each proxy "
                   "(default %(default)s)")
    p.add_argument("--redact", metavar="NAME[,NAME...]",
                   help="header or query-parameter names, or globs such as '*pin*', whose "
                   "values the proxies' tap shows as <redacted>, besides the defaults "
                   "(written as the sidecar's MESHTUI_REDACT)")


# The input is held whole (and twice, as text and as parsed YAML); manifests
# are kilobytes, so anything near this is not one.
MAX_INPUT = 64 << 20


def _read(path: str) -> str:
    from meshtui.errors import UsageError
    from meshtui.model.sanitize import clean

    where = "standard input" if path == "-" else clean(path)
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(MAX_INPUT + 1)
    except FileNotFoundError:
        raise UsageError(f"inject: {where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"inject: {where}: is a directory, not a YAML file") from None
    except OSError as e:
        raise UsageError(f"inject: {where}: cannot read: {e.strerror}") from None
    if len(raw) > MAX_INPUT:
        raise UsageError(f"inject: {where}: larger than {MAX_INPUT >> 20} MiB; "
                         "not a manifest")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UsageError(f"inject: {where}: not UTF-8 text (line {line})") from None


def config_from(args: argparse.Namespace) -> InjectConfig:
    """The sidecar's settings from the command line.

    Raises:
        UsageError: a port, UID, image or quantity that cannot be.
    """
    from meshtui.errors import UsageError
    from meshtui.inject import InjectConfig
    from meshtui.model.redact import parse_names
    from meshtui.proxy.init import parse_ports

    try:
        redact = parse_names(args.redact or "")
    except ValueError as e:
        raise UsageError(f"inject: {e}") from None

    return InjectConfig(
        image=args.image, image_pull_policy=args.image_pull_policy, proxy_uid=args.proxy_uid,
        inbound_port=args.inbound_port, outbound_port=args.outbound_port,
        tap_port=args.tap_port, admin_port=args.admin_port,
        cpu_request=args.proxy_cpu_request, memory_request=args.proxy_memory_request,
        skip_inbound_ports=parse_ports(args.skip_inbound_ports, "inject: --skip-inbound-ports"),
        skip_outbound_ports=parse_ports(args.skip_outbound_ports,
                                        "inject: --skip-outbound-ports"),
        redact=redact)


def run(args: argparse.Namespace) -> int:
    from meshtui.errors import UsageError
    from meshtui.inject import ParseError, inject_text
    from meshtui.model.sanitize import clean

    config = config_from(args)
    text = _read(args.file)
    try:
        result = inject_text(text, config)
    except ParseError as e:
        where = "standard input" if args.file == "-" else clean(args.file)
        raise UsageError(f"inject: {e} (in {where})") from None
    sys.stdout.write(result.text)
    sys.stdout.flush()
    for outcome in result.outcomes:
        print(outcome.line(), file=sys.stderr)
    if result.injected:
        # The pod network reaches these ports; until the mesh has identities,
        # nothing stands between them and any pod that asks.
        print(f"note: the proxies' tap ({config.tap_port}) and admin ({config.admin_port}) "
              "ports take no credentials yet: any pod that can reach them can watch "
              "requests and read metrics", file=sys.stderr)
    if not result.outcomes:
        print("no workloads found (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, "
              "ReplicationController, Job, CronJob); the YAML is unchanged", file=sys.stderr)
    return 0
