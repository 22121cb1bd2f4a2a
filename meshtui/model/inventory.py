"""The mesh's inventory: which pods exist, where they listen, where their proxies are.

The controller reads it from a YAML/JSON file (``meshtui controller --inventory``);
a proxy may read the same file to name its peers. The file holds::

    pods:
      - name: web-7d9c-0
        namespace: emojivoto
        deployment: web
        address: 127.0.0.1:18080   # the app, as other pods reach it
        proxy: 127.0.0.1:14190      # the proxy's gRPC (tap/metrics) port; absent: unmeshed
        inbound: 127.0.0.1:14143    # optional: the proxy's inbound listener
        admin: 127.0.0.1:14191      # optional: the proxy's /metrics
        serviceaccount: web         # optional: the identity it is issued (default: deployment)
    services:                       # optional: names apps call, as Kubernetes Services
      - name: emoji-svc
        namespace: emojivoto
        port: 8080
        endpoints: [127.0.0.1:18080]

A service is reached as ``NAME.NAMESPACE:PORT`` (``.svc`` and
``.svc.cluster.local`` suffixes too); in explicit interception the proxy
routes such an authority to one of the endpoints, as Linkerd's destination
service tells its proxies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshtui.model.sanitize import clean


class InventoryError(ValueError):
    """The inventory file is not what it should be."""


@dataclass(frozen=True, slots=True)
class Workload:
    """Where a pod sits. Empty strings mean unknown."""

    namespace: str = ""
    deployment: str = ""
    pod: str = ""

    def __bool__(self) -> bool:
        return bool(self.namespace or self.deployment or self.pod)


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, *, what: str = "address") -> Address:
    """``host:port`` or ``[v6]:port`` → Address; InventoryError for anything else."""
    text = str(text).strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]:")
        port_s = rest if sep else ""
    else:
        host, sep, port_s = text.rpartition(":")
    if not sep or not host or not (port_s.isascii() and port_s.isdigit()) \
            or not 0 < int(port_s) < 65536:
        raise InventoryError(f"bad {what} {text!r}: expected HOST:PORT")
    return Address(host, int(port_s))


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    namespace: str
    deployment: str
    address: Address | None
    proxy: Address | None = None
    inbound: Address | None = None
    admin: Address | None = None
    serviceaccount: str = ""

    @property
    def service_account(self) -> str:
        """The service account its identity names: given, else the deployment's name."""
        return self.serviceaccount or self.deployment or "default"

    @property
    def meshed(self) -> bool:
        """Whether the pod is meant to have a proxy (reachability is the controller's)."""
        return self.proxy is not None

    @property
    def workload(self) -> Workload:
        return Workload(self.namespace, self.deployment, self.name)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    namespace: str
    port: int
    endpoints: tuple[Address, ...] = ()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


def _service_key(host: str) -> str:
    """``emoji-svc.emojivoto[.svc[.cluster.local]]`` → ``emoji-svc.emojivoto``."""
    host = host.lower().rstrip(".")
    for suffix in (".svc.cluster.local", ".svc"):
        if host.endswith(suffix):
            return host[: -len(suffix)]
    return host


@dataclass(frozen=True)
class Inventory:
    pods: tuple[Pod, ...] = ()
    services: tuple[Service, ...] = ()
    _by_addr: dict[tuple[str, int], Pod] = field(default_factory=dict, compare=False, repr=False)
    _by_ip: dict[str, Pod | None] = field(default_factory=dict, compare=False, repr=False)
    _svc: dict[tuple[str, int], Service] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for svc in self.services:
            self._svc[(f"{svc.name}.{svc.namespace}", svc.port)] = svc
        for pod in self.pods:
            for addr in (pod.address, pod.inbound):
                if addr is not None:
                    self._by_addr[(addr.host, addr.port)] = pod
            if pod.address is not None:
                # An IP names a pod only when one pod alone has it (its own network
                # namespace, or its own loopback address); on a shared address only
                # ip:port does. Only the app's address counts: a proxy listener may
                # sit on a shared address (the controller's, where clients call).
                host = pod.address.host
                prev = self._by_ip.get(host, pod)
                self._by_ip[host] = pod if prev is pod else None

    def resolve(self, host: str, port: int | None = None) -> Pod | None:
        """The pod listening at ``host:port``, or owning ``host`` outright; None if unknown."""
        if port is not None:
            pod = self._by_addr.get((host, port))
            if pod is not None:
                return pod
        return self._by_ip.get(host)

    def service(self, host: str, port: int) -> Service | None:
        """The service an authority ``host:port`` names, if any."""
        return self._svc.get((_service_key(host), port))

    def namespaces(self) -> list[str]:
        return sorted({p.namespace for p in self.pods})

    @classmethod
    def from_pods(cls, pods: Iterable[Pod]) -> Inventory:
        return cls(tuple(pods))

    @classmethod
    def from_data(cls, data: Any) -> Inventory:
        """Builds an inventory from the parsed YAML/JSON document."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping) or not isinstance(data.get("pods", []), list):
            raise InventoryError("inventory must be a mapping with a list under 'pods'")
        pods = []
        seen: set[tuple[str, str]] = set()
        for i, raw in enumerate(data.get("pods") or []):
            if not isinstance(raw, Mapping):
                raise InventoryError(f"pods[{i}] is not a mapping")
            name = str(raw.get("name") or "").strip()
            ns = str(raw.get("namespace") or "default").strip()
            if not name:
                raise InventoryError(f"pods[{i}] has no name")
            if (ns, name) in seen:
                raise InventoryError(f"pod {ns}/{name} is listed twice")
            seen.add((ns, name))
            _check_names(i, ns, name, raw)

            def addr(key: str, raw: Mapping[str, Any] = raw, name: str = name) -> Address | None:
                v = raw.get(key)
                return None if v in (None, "", "unmeshed") else parse_address(
                    v, what=f"{key} of pod {name}"
                )

            pods.append(
                Pod(
                    name=name,
                    namespace=ns,
                    deployment=str(raw.get("deployment") or "").strip(),
                    address=addr("address"),
                    proxy=addr("proxy"),
                    inbound=addr("inbound"),
                    admin=addr("admin"),
                    serviceaccount=str(raw.get("serviceaccount") or "").strip(),
                )
            )
        return cls(tuple(pods), _services_from_data(data.get("services") or []))

    def to_data(self) -> dict[str, Any]:
        """The document form, as :meth:`from_data` reads it."""
        out = []
        for p in self.pods:
            d: dict[str, Any] = {"name": p.name, "namespace": p.namespace}
            if p.deployment:
                d["deployment"] = p.deployment
            for key in ("address", "proxy", "inbound", "admin"):
                v = getattr(p, key)
                if v is not None:
                    d[key] = str(v)
            if p.serviceaccount:
                d["serviceaccount"] = p.serviceaccount
            out.append(d)
        doc: dict[str, Any] = {"pods": out}
        if self.services:
            doc["services"] = [
                {"name": s.name, "namespace": s.namespace, "port": s.port,
                 "endpoints": [str(a) for a in s.endpoints]}
                for s in self.services
            ]
        return doc


def _check_names(i: int, ns: str, name: str, raw: Mapping[str, Any]) -> None:
    """Names that identities and tokens are made of must read one way only.

    An identity is ``<serviceaccount>.<namespace>.serviceaccount...`` and a pod's token
    is made of ``<namespace>/<pod>``: a namespace with a dot, or any of them with a
    slash, could give two pods the same identity or the same token. Kubernetes
    forbids both (a namespace is a DNS label; the others are DNS subdomains).
    """
    if "." in ns or "/" in ns:
        raise InventoryError(f"pods[{i}]: namespace {clean(ns)!r} may not hold '.' or '/' "
                             "(a namespace is a DNS label)")
    for key, value in (("name", name), ("deployment", raw.get("deployment")),
                       ("serviceaccount", raw.get("serviceaccount"))):
        if isinstance(value, str) and "/" in value:
            raise InventoryError(f"pods[{i}]: {key} {clean(value)!r} may not hold '/'")


def _services_from_data(raw_list: Any) -> tuple[Service, ...]:
    if not isinstance(raw_list, list):
        raise InventoryError("'services' must be a list")
    out = []
    for i, raw in enumerate(raw_list):
        if not isinstance(raw, Mapping) or not raw.get("name"):
            raise InventoryError(f"services[{i}] needs a name")
        port = raw.get("port")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InventoryError(f"services[{i}] needs a port from 1 to 65535")
        eps = raw.get("endpoints") or []
        if not isinstance(eps, list):
            raise InventoryError(f"services[{i}].endpoints must be a list")
        out.append(Service(
            name=str(raw["name"]), namespace=str(raw.get("namespace") or "default"), port=port,
            endpoints=tuple(parse_address(e, what=f"endpoint of service {raw['name']}")
                            for e in eps),
        ))
    return tuple(out)
