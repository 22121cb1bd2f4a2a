"""What ``meshtui inject`` adds to a pod: the proxy sidecar and its init container.

The two containers agree with each other through :class:`InjectConfig`:

- ``meshtui-init`` runs ``meshtui proxy-init`` as root with NET_ADMIN and
  NET_RAW, first of the init containers, installing the pod's iptables rules
  before any other container starts; the rules skip the connections of the
  user ``proxy_uid`` and the proxy's own tap and admin ports.
- ``meshtui-proxy`` runs ``meshtui proxy`` as that user, so its own
  connections pass the rules untouched. It listens for inbound traffic on
  every address (iptables redirects traffic for the pod's IP to the inbound
  port there), for outbound traffic on 127.0.0.1 (where locally redirected
  connections arrive), and serves tap and admin on every address so that the
  controller and the kubelet's probes reach them. It learns its pod's name,
  namespace and IP from the Downward API, and its workload's name from the
  manifest itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from meshtui import __version__
from meshtui.errors import UsageError
from meshtui.model.redact import ENV as REDACT_ENV
from meshtui.proxy.init import (
    DEFAULT_ADMIN_PORT,
    DEFAULT_INBOUND_PORT,
    DEFAULT_OUTBOUND_PORT,
    DEFAULT_PROXY_UID,
    DEFAULT_TAP_PORT,
    PortRange,
    parse_ports,
)

PROXY_CONTAINER = "meshtui-proxy"
INIT_CONTAINER = "meshtui-init"
VERSION_ANNOTATION = "meshtui.io/proxy-version"  # marks a pod as injected
INJECT_ANNOTATIONS = ("meshtui.io/inject", "linkerd.io/inject")
SKIP_INBOUND_ANNOTATION = "meshtui.io/skip-inbound-ports"
SKIP_OUTBOUND_ANNOTATION = "meshtui.io/skip-outbound-ports"
DEFAULT_IMAGE = f"ghcr.io/meshtui/meshtui:{__version__}"
# What the scheduler reserves for the proxy. The memory is a little above the
# resident size measured under load (46 MiB, benchmarks/proxy_overhead.py), so
# that a node is not overcommitted by the mesh itself; no limits, which would
# turn a burst into an OOM kill of the pod's data path.
DEFAULT_CPU_REQUEST = "100m"
DEFAULT_MEMORY_REQUEST = "64Mi"
# A Kubernetes resource quantity: a decimal number and an optional SI suffix.
_QUANTITY = re.compile(r"(\d+(\.\d*)?|\.\d+)([numkMGTPE]|[KMGTPE]i)?")


@dataclass(frozen=True)
class InjectConfig:
    """The sidecar's image, user and ports, and the ports its rules leave alone.

    Attributes:
        image: the image both containers run (its entry point is ``meshtui``).
        image_pull_policy: as Kubernetes takes it; empty: not set.
        proxy_uid: the user the proxy runs as, which the iptables rules skip.
        skip_inbound_ports, skip_outbound_ports: ports passed to proxy-init's
            ``--inbound-ports-to-ignore`` / ``--outbound-ports-to-ignore`` for
            every pod (a pod's own annotations add more; the tap and admin
            ports are always among the inbound ones).
        cpu_request, memory_request: the proxy's resource requests (quantities).
        version: written to the ``meshtui.io/proxy-version`` annotation.
        redact: header and query names (or globs) the proxies' tap redacts besides
            the defaults; handed over as ``MESHTUI_REDACT``.
    """

    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    proxy_uid: int = DEFAULT_PROXY_UID
    inbound_port: int = DEFAULT_INBOUND_PORT
    outbound_port: int = DEFAULT_OUTBOUND_PORT
    tap_port: int = DEFAULT_TAP_PORT
    admin_port: int = DEFAULT_ADMIN_PORT
    skip_inbound_ports: tuple[PortRange, ...] = field(default_factory=tuple)
    skip_outbound_ports: tuple[PortRange, ...] = field(default_factory=tuple)
    cpu_request: str = DEFAULT_CPU_REQUEST
    memory_request: str = DEFAULT_MEMORY_REQUEST
    version: str = __version__
    redact: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ports = {"--inbound-port": self.inbound_port, "--outbound-port": self.outbound_port,
                 "--tap-port": self.tap_port, "--admin-port": self.admin_port}
        for flag, port in ports.items():
            if not 1 <= port <= 65535:
                raise UsageError(f"inject: {flag} must be a port from 1 to 65535, not {port}")
        if len(set(ports.values())) != len(ports):
            raise UsageError("inject: the proxy's four ports must differ from each other")
        if not 0 < self.proxy_uid < 1 << 31:
            raise UsageError(f"inject: --proxy-uid must be a UID above 0 (the proxy does "
                             f"not run as root), not {self.proxy_uid}")
        if not self.image or any(c.isspace() for c in self.image):
            raise UsageError(f"inject: --proxy-image {self.image!r} is not an image reference")
        if self.image_pull_policy not in ("", "Always", "IfNotPresent", "Never"):
            raise UsageError("inject: --image-pull-policy must be Always, IfNotPresent or "
                             f"Never, not {self.image_pull_policy!r}")
        for flag, quantity in (("--proxy-cpu-request", self.cpu_request),
                               ("--proxy-memory-request", self.memory_request)):
            if not _QUANTITY.fullmatch(quantity):
                raise UsageError(f"inject: {flag} {quantity!r} is not a Kubernetes quantity "
                                 "(like 100m, 0.5, 64Mi, 1G)")


def _map(*pairs: tuple[str, Any]) -> CommentedMap:
    return CommentedMap(pairs)


def _seq(items: Iterable[Any]) -> CommentedSeq:
    return CommentedSeq(list(items))


def _env_value(name: str, value: str) -> CommentedMap:
    return _map(("name", name), ("value", value))


def _env_field(name: str, path: str) -> CommentedMap:
    return _map(("name", name), ("valueFrom", _map(("fieldRef", _map(("fieldPath", path))))))


def _ports_arg(ports: Iterable[PortRange]) -> str:
    return ",".join(f"{p.first}-{p.last}" if p.first != p.last else str(p.first)
                    for p in ports)


def _image(c: InjectConfig, name: str) -> list[tuple[str, Any]]:
    pull = [("imagePullPolicy", c.image_pull_policy)] if c.image_pull_policy else []
    return [("name", name), ("image", c.image), *pull]


def proxy_container(c: InjectConfig, deployment: str) -> CommentedMap:
    """The sidecar; ``deployment`` is the name its telemetry gives its workload."""
    env = [
        _env_field("MESHTUI_POD_NAME", "metadata.name"),
        _env_field("MESHTUI_POD_NAMESPACE", "metadata.namespace"),
        _env_field("MESHTUI_POD_IP", "status.podIP"),
        _env_value("MESHTUI_DEPLOYMENT", deployment),
        _env_value("MESHTUI_INBOUND_ADDR", f"0.0.0.0:{c.inbound_port}"),
        _env_value("MESHTUI_OUTBOUND_ADDR", f"127.0.0.1:{c.outbound_port}"),
        _env_value("MESHTUI_TAP_ADDR", f"0.0.0.0:{c.tap_port}"),
        _env_value("MESHTUI_ADMIN_ADDR", f"0.0.0.0:{c.admin_port}"),
        *([_env_value(REDACT_ENV, ",".join(c.redact))] if c.redact else []),
    ]

    def probe(path: str, delay: int) -> CommentedMap:
        return _map(("httpGet", _map(("path", path), ("port", c.admin_port))),
                    ("initialDelaySeconds", delay))

    return _map(
        *_image(c, PROXY_CONTAINER),
        ("args", _seq(["proxy"])),
        ("env", _seq(env)),
        ("ports", _seq([
            _map(("name", "meshtui-inbound"), ("containerPort", c.inbound_port)),
            _map(("name", "meshtui-tap"), ("containerPort", c.tap_port)),  # gRPC
            _map(("name", "meshtui-admin"), ("containerPort", c.admin_port)),
        ])),
        ("readinessProbe", probe("/ready", 2)),
        ("livenessProbe", probe("/live", 10)),
        ("resources", _map(("requests", _map(("cpu", c.cpu_request),
                                             ("memory", c.memory_request))))),
        ("securityContext", _map(
            ("runAsUser", c.proxy_uid),
            ("runAsNonRoot", True),
            ("readOnlyRootFilesystem", True),
            ("allowPrivilegeEscalation", False),
        )),
        ("terminationMessagePolicy", "FallbackToLogsOnError"),
    )


def init_container(c: InjectConfig, skip_inbound: Iterable[PortRange] = (),
                   skip_outbound: Iterable[PortRange] = ()) -> CommentedMap:
    """The init container that installs the pod's iptables rules."""
    # The tap and admin ports are named in the rules' skip list, so that the
    # manifest shows every port that bypasses the proxy.
    own = {PortRange(c.tap_port, c.tap_port), PortRange(c.admin_port, c.admin_port)}
    args = ["proxy-init",
            "--proxy-uid", str(c.proxy_uid),
            "--inbound-port", str(c.inbound_port),
            "--outbound-port", str(c.outbound_port),
            "--inbound-ports-to-ignore",
            _ports_arg(sorted({*own, *c.skip_inbound_ports, *skip_inbound}))]
    outbound = sorted({*c.skip_outbound_ports, *skip_outbound})
    if outbound:
        args += ["--outbound-ports-to-ignore", _ports_arg(outbound)]
    # proxy-init always leaves its own idea of the tap and admin ports alone;
    # tell it when they moved, or it would also pass the defaults straight through.
    if c.tap_port != DEFAULT_TAP_PORT:
        args += ["--tap-port", str(c.tap_port)]
    if c.admin_port != DEFAULT_ADMIN_PORT:
        args += ["--admin-port", str(c.admin_port)]
    return _map(
        *_image(c, INIT_CONTAINER),
        ("args", _seq(args)),
        ("securityContext", _map(
            ("capabilities", _map(("add", _seq(["NET_ADMIN", "NET_RAW"])))),
            ("privileged", False),
            ("runAsUser", 0),
            ("runAsNonRoot", False),
            ("allowPrivilegeEscalation", False),
        )),
        ("terminationMessagePolicy", "FallbackToLogsOnError"),
    )


def annotation_ports(annotations: Any, key: str) -> tuple[PortRange, ...]:
    """Ports a pod annotation names (none when absent).

    Raises:
        UsageError: the annotation is there but does not name ports.
    """
    value = annotations.get(key) if hasattr(annotations, "get") else None
    if value is None:
        return ()
    return parse_ports(str(value), f"annotation {key}")


def quoted(text: str) -> DoubleQuotedScalarString:
    """A string that stays a string whatever it looks like (a version "1.10")."""
    return DoubleQuotedScalarString(text)
