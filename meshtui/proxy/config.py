"""The proxy's options: command-line flags, each with an environment variable
as Kubernetes' Downward API would set it, and the defaults Linkerd users know.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshtui.errors import UsageError
from meshtui.model.inventory import Address, InventoryError, parse_address
from meshtui.model.redact import ENV as REDACT_ENV
from meshtui.model.redact import parse_names
from meshtui.model.tap import MAX_CAPTURE_BODY

DEFAULT_INBOUND = Address("127.0.0.1", 4143)
DEFAULT_OUTBOUND = Address("127.0.0.1", 4140)
DEFAULT_TAP = Address("127.0.0.1", 4190)
DEFAULT_ADMIN = Address("127.0.0.1", 4191)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. Each bounds one wait so that no peer can hold the proxy."""

    detect: float = 1.0  # first bytes of a connection, to tell HTTP from opaque
    header_read: float = 10.0  # a request's head, from its first byte (408 past it)
    idle: float = 90.0  # a keep-alive connection with no request under way
    connect: float = 3.0  # an upstream connection (504 past it)
    response: float = 30.0  # an upstream's response head after the request (504 past it)
    drain: float = 5.0  # in-flight requests on SIGTERM before connections are cut
    pool_idle: float = 30.0  # an idle pooled upstream connection
    # An opaque (or upgraded, or HTTP/2) connection with no byte either way. An hour,
    # as Envoy's TCP proxy: database pools and message brokers keep quiet
    # connections for minutes; floods of them meet the connection cap first.
    opaque_idle: float = 3600.0
    # A request body: this long for the first bytes, plus a second per
    # ``min_body_rate`` bytes received (time the proxy itself holds reading paused
    # does not count). Apache's mod_reqtimeout defaults: body=20,MinRate=500.
    body: float = 20.0
    min_body_rate: float = 500.0


@dataclass(frozen=True)
class ProxyConfig:
    """Everything one proxy process needs. ``port 0`` asks the kernel for a free port.

    Attributes:
        inbound: listener for traffic to the pod (iptables redirects it here).
        outbound: listener for the pod's own calls (iptables, or ``HTTP_PROXY``).
        app: where inbound traffic goes; None: the original destination's port
            on 127.0.0.1.
        tap: the gRPC endpoint (Tap.Observe, Metrics.Scrape); None: not served.
        admin: ``/metrics``, ``/ready``, ``/live``; None: not served.
        inventory: the controller's inventory file, to name peers and route
            explicit-mode requests to the peer pod's proxy.
        max_in_flight: requests under way at once before new ones get 503.
        max_capture_body: the most bytes of a body tap may copy, whatever a
            subscriber asks (0: no bodies at all).
    """

    inbound: Address | None = DEFAULT_INBOUND
    outbound: Address | None = DEFAULT_OUTBOUND
    app: Address | None = None
    tap: Address | None = DEFAULT_TAP
    admin: Address | None = DEFAULT_ADMIN
    pod: str = ""
    namespace: str = "default"
    deployment: str = ""
    pod_ip: str = "127.0.0.1"
    inventory: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_in_flight: int = 10_000
    max_capture_body: int = MAX_CAPTURE_BODY
    mark: int | None = None  # SO_MARK on the proxy's own connections (iptables skips them)
    #: Connections open at once per listener; None: from the file descriptor limit
    #: (see :func:`connection_cap`).
    max_connections: int | None = None
    #: Header and query names (or globs) tap redacts besides the model's defaults.
    redact: tuple[str, ...] = ()
    #: The controller's identity (TLS) port, to get this pod's certificate from; None: identity
    #: off (every connection plain, as an unmeshed pod's).
    identity: Address | None = None
    #: The pod's token, given at start, that the controller checks the CSR against.
    identity_token: str = ""
    #: The file it came from, read again at each request for a certificate (tokens
    #: expire: whoever gave it writes a new one in time). None: given as such.
    identity_token_file: str | None = None
    #: The trust anchor (a PEM file) given out of band: the controller's answers must
    #: chain to it. None: the first answer's anchor is kept, and may never change.
    identity_anchor: str | None = None
    #: The service account the pod's identity names; '' : its deployment's name.
    serviceaccount: str = ""
    #: With identity on: connections to a meshed peer travel as streams of one mutual-TLS
    #: connection to it (meshtui.proxy.link); False: each in a TLS connection of its own.
    link: bool = True


# flag → environment variable (the Downward API's way of handing a pod its facts)
ENV = {
    "inbound": "MESHTUI_INBOUND_ADDR",
    "outbound": "MESHTUI_OUTBOUND_ADDR",
    "app": "MESHTUI_APP_ADDR",
    "tap": "MESHTUI_TAP_ADDR",
    "admin": "MESHTUI_ADMIN_ADDR",
    "pod": "MESHTUI_POD_NAME",
    "namespace": "MESHTUI_POD_NAMESPACE",
    "deployment": "MESHTUI_DEPLOYMENT",
    "pod_ip": "MESHTUI_POD_IP",
    "inventory": "MESHTUI_INVENTORY",
    "detect_timeout": "MESHTUI_DETECT_TIMEOUT",
    "header_timeout": "MESHTUI_HEADER_TIMEOUT",
    "connect_timeout": "MESHTUI_CONNECT_TIMEOUT",
    "response_timeout": "MESHTUI_RESPONSE_TIMEOUT",
    "max_in_flight": "MESHTUI_MAX_IN_FLIGHT",
    "max_capture_body": "MESHTUI_MAX_CAPTURE_BODY",
    "max_connections": "MESHTUI_MAX_CONNECTIONS",
    "opaque_idle_timeout": "MESHTUI_OPAQUE_IDLE_TIMEOUT",
    "body_timeout": "MESHTUI_BODY_TIMEOUT",
    "min_body_rate": "MESHTUI_MIN_BODY_RATE",
    "mark": "MESHTUI_PROXY_MARK",
    "redact": REDACT_ENV,
    "identity": "MESHTUI_IDENTITY_ADDR",
    "identity_token": "MESHTUI_IDENTITY_TOKEN",
    "identity_token_file": "MESHTUI_IDENTITY_TOKEN_FILE",
    "identity_anchor": "MESHTUI_IDENTITY_TRUST_ANCHOR",
    "serviceaccount": "MESHTUI_SERVICEACCOUNT",
    "link": "MESHTUI_LINK",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``meshtui proxy`` flags (no defaults here: unset flags fall back to env)."""
    def opt(flag: str, key: str, help_: str, metavar: str | None = None) -> None:
        p.add_argument(flag, dest=key, metavar=metavar,
                       help=f"{help_} (env {ENV[key]})")

    opt("--inbound", "inbound", "inbound listener (default 127.0.0.1:4143)", "HOST:PORT")
    opt("--outbound", "outbound", "outbound listener (default 127.0.0.1:4140)", "HOST:PORT")
    opt("--app", "app", "the app inbound traffic goes to (default: the original "
        "destination's port on 127.0.0.1)", "HOST:PORT")
    opt("--tap", "tap", "gRPC tap/metrics endpoint (default 127.0.0.1:4190; 'off': none)",
        "HOST:PORT")
    opt("--admin", "admin", "/metrics, /ready, /live (default 127.0.0.1:4191; 'off': none)",
        "HOST:PORT")
    opt("--pod", "pod", "pod name")
    opt("--namespace", "namespace", "pod namespace (default 'default')")
    opt("--deployment", "deployment", "pod deployment")
    opt("--pod-ip", "pod_ip", "pod IP, as tap shows it (default 127.0.0.1)", "IP")
    opt("--inventory", "inventory", "the controller's inventory file: names peers and, "
        "without iptables, routes calls to the peer pod's proxy", "FILE")
    opt("--detect-timeout", "detect_timeout",
        "seconds to wait for a client's first bytes before relaying opaquely (default 1)", "S")
    opt("--header-timeout", "header_timeout",
        "seconds a request's head may take to arrive (default 10)", "S")
    opt("--connect-timeout", "connect_timeout",
        "seconds to connect upstream before 504 (default 3)", "S")
    opt("--response-timeout", "response_timeout",
        "seconds to wait for an upstream's response head before 504 (default 30)", "S")
    opt("--max-in-flight", "max_in_flight",
        "requests under way at once before new ones get 503 (default 10000)", "N")
    opt("--max-capture-body", "max_capture_body",
        f"the most bytes of each body tap --capture-body may copy; asking more gets this "
        f"(default and most {MAX_CAPTURE_BODY}; 0: no bodies)", "N")
    opt("--max-connections", "max_connections",
        "connections open at once per listener; more are refused, after the longest-idle "
        "one is closed to make room (default: what the file descriptor limit allows, "
        "at most 10000)", "N")
    opt("--opaque-idle-timeout", "opaque_idle_timeout",
        "seconds an opaque, upgraded or HTTP/2 connection may pass no byte either way "
        "(default 3600)", "S")
    opt("--body-timeout", "body_timeout",
        "seconds a request body may take, plus one per --min-body-rate bytes received "
        "(default 20)", "S")
    opt("--min-body-rate", "min_body_rate",
        "bytes a second that extend the body timeout (default 500)", "N")
    opt("--redact", "redact", "header or query-parameter names (or globs such as "
        "'*pin*') whose values tap shows as <redacted>, besides the defaults, "
        "comma-separated", "NAME[,NAME...]")
    opt("--mark", "mark", "socket mark (SO_MARK, needs CAP_NET_ADMIN) on the proxy's own "
        "connections, for iptables rules that let them through unredirected", "N")
    opt("--identity", "identity", "the controller's identity port to get this pod's "
        "certificate from (TLS): with it, meshed peers are spoken to over mutual TLS",
        "HOST:PORT")
    opt("--identity-token", "identity_token", "the pod's identity token (prefer the file "
        "or the environment: a flag shows in ps)", "TOKEN")
    opt("--identity-trust-anchor", "identity_anchor", "the mesh's trust anchor (PEM), given "
        "out of band: certificates that do not chain to it are refused", "FILE")
    opt("--identity-token-file", "identity_token_file", "a file holding the pod's identity "
        "token, read again at each renewal", "FILE")
    opt("--serviceaccount", "serviceaccount", "the service account the pod's identity "
        "names (default: its deployment)", "NAME")
    opt("--link", "link", "with identity: 'on' (default) carries the connections to a "
        "meshed peer as streams of one mutual-TLS connection; 'off' gives each its own",
        "on|off")


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None
              ) -> ProxyConfig:
    """Flags first, then environment variables, then defaults; UsageError on bad values."""
    env = os.environ if environ is None else environ

    def get(key: str) -> str | None:
        v = getattr(args, key, None)
        if v is None:
            v = env.get(ENV[key]) or None
        return v

    def addr(key: str, default: Address | None, allow_off: bool = False) -> Address | None:
        v = get(key)
        if v is None:
            return default
        if allow_off and v.strip().lower() == "off":
            return None
        if v.startswith(":"):  # ":4143" binds the default host
            v = "127.0.0.1" + v
        what = f"--{key.replace('_', '-')}"
        try:
            if key != "app" and v.endswith(":0"):  # a listener on a port the kernel picks
                return Address(parse_address(v[:-1] + "1", what=what).host, 0)
            return parse_address(v, what=what)
        except InventoryError as e:
            raise UsageError(f"proxy: {e}") from None

    def whole(key: str) -> int | None:
        v = get(key)
        if v is None:
            return None
        if not (v.isascii() and v.isdigit()) or int(v) < 1:
            raise UsageError(f"proxy: --{key.replace('_', '-')} must be a whole number "
                             f"above 0, not {v!r}")
        return int(v)

    def seconds(key: str, default: float) -> float:
        v = get(key)
        if v is None:
            return default
        try:
            s = float(v)
        except ValueError:
            s = -1.0
        if not 0 < s < 86_400:
            raise UsageError(f"proxy: --{key.replace('_', '-')} must be a number of "
                             f"seconds above 0, not {v!r}")
        return s

    d = Timeouts()
    timeouts = Timeouts(
        detect=seconds("detect_timeout", d.detect),
        header_read=seconds("header_timeout", d.header_read),
        connect=seconds("connect_timeout", d.connect),
        response=seconds("response_timeout", d.response),
        opaque_idle=seconds("opaque_idle_timeout", d.opaque_idle),
        body=seconds("body_timeout", d.body),
        min_body_rate=float(whole("min_body_rate") or d.min_body_rate),
    )
    max_in_flight = whole("max_in_flight") or 10_000
    max_connections = whole("max_connections")
    raw_cap = get("max_capture_body")
    max_capture_body = MAX_CAPTURE_BODY
    if raw_cap is not None:
        if not (raw_cap.isascii() and raw_cap.isdigit()) or int(raw_cap) > MAX_CAPTURE_BODY:
            raise UsageError(f"proxy: --max-capture-body must be a whole number from 0 to "
                             f"{MAX_CAPTURE_BODY}, not {raw_cap!r}")
        max_capture_body = int(raw_cap)
    raw_mark = get("mark")
    mark = None
    if raw_mark is not None:
        try:
            mark = int(raw_mark, 0)
        except ValueError:
            mark = -1
        if not 0 < mark < 1 << 32:
            raise UsageError(f"proxy: --mark must be a number from 1 to 2^32-1 (0x.. too), "
                             f"not {raw_mark!r}")
    link = (get("link") or "on").lower()
    if link not in ("on", "off"):
        raise UsageError(f"proxy: --link is 'on' or 'off', not {link!r}")
    try:
        redact = parse_names(get("redact") or "")
    except ValueError as e:
        raise UsageError(f"proxy: {e}") from None
    cfg = ProxyConfig(
        inbound=addr("inbound", DEFAULT_INBOUND),
        outbound=addr("outbound", DEFAULT_OUTBOUND),
        app=addr("app", None),
        tap=addr("tap", DEFAULT_TAP, allow_off=True),
        admin=addr("admin", DEFAULT_ADMIN, allow_off=True),
        pod=get("pod") or "",
        namespace=get("namespace") or "default",
        deployment=get("deployment") or "",
        pod_ip=get("pod_ip") or "127.0.0.1",
        inventory=get("inventory"),
        timeouts=timeouts,
        max_in_flight=max_in_flight,
        max_capture_body=max_capture_body,
        mark=mark,
        max_connections=max_connections,
        redact=redact,
        identity=addr("identity", None),
        identity_token=_token(get("identity_token"), get("identity_token_file")),
        identity_token_file=(None if get("identity_token")
                             else get("identity_token_file") or None),
        identity_anchor=get("identity_anchor") or None,
        serviceaccount=get("serviceaccount") or "",
        link=link == "on",
    )
    if cfg.identity is not None and not cfg.identity_token:
        raise UsageError("proxy: --identity needs the pod's token (--identity-token-file, "
                         f"{ENV['identity_token_file']} or {ENV['identity_token']})")
    for name in ("pod", "namespace", "deployment", "serviceaccount"):
        value = getattr(cfg, name)
        if any(c.isspace() or not c.isprintable() for c in value):
            raise UsageError(f"proxy: --{name} {value!r} has spaces or control characters")
    return cfg


def _token(given: str | None, path: str | None) -> str:
    if given:
        return given.strip()
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise UsageError(f"proxy: cannot read the identity token {path!r}: "
                         f"{(e.strerror or str(e)).lower()}") from None


#: Descriptors kept for everything but client connections and their upstreams
#: (listeners, the gRPC and admin endpoints, the inventory, logs).
RESERVED_FDS = 64


def connection_cap(nofile: int, listeners: int = 2) -> int:
    """Connections per listener that the descriptor limit ``nofile`` can carry:
    each client connection may hold one upstream, so two descriptors apiece,
    after :data:`RESERVED_FDS`; at most 10,000."""
    per = (nofile - RESERVED_FDS) // (2 * max(1, listeners))
    return max(1, min(10_000, per))
