"""Where a proxied connection or request goes.

Inbound traffic goes to the pod's app. Outbound traffic goes where the app meant
it to go: the original destination of a connection iptables redirected
(transparent mode), or, without iptables (explicit mode, ``HTTP_PROXY``), the
authority of each request — a service name from the inventory picks one of its
endpoints, as Linkerd's destination service would, and a meshed endpoint is
reached through its pod's proxy (its inbound port) so that both proxies see the
request.
"""

from __future__ import annotations

from collections.abc import Callable

from meshtui.model.inventory import Inventory, Workload
from meshtui.proxy.http1 import split_authority

HostPort = tuple[str, int]


class NoRoute(Exception):
    """The proxy cannot tell where this goes; answered with ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Router:
    """Routing decisions for one proxy.

    Args:
        app: the app's address for inbound traffic; None: the original
            destination's port on 127.0.0.1.
        inventory: returns the inventory in force (None: no inventory).
        own: the proxy's own listener addresses, never a destination.
    """

    def __init__(self, app: HostPort | None,
                 inventory: Callable[[], Inventory | None] = lambda: None,
                 own: set[HostPort] | None = None) -> None:
        self.app = app
        self.inventory = inventory
        self.own = own if own is not None else set()
        self._turn: dict[tuple[str, int], int] = {}

    def inbound(self, orig: HostPort | None) -> tuple[HostPort, HostPort]:
        """(where to connect, the destination telemetry names) for inbound traffic."""
        if self.app is not None:
            return self.app, orig or self.app
        if orig is not None:
            return ("127.0.0.1", orig[1]), orig
        raise NoRoute(502, "no app address (--app) and the connection was not redirected")

    def outbound(self, orig: HostPort | None, authority: str | None
                 ) -> tuple[HostPort, HostPort]:
        """(where to connect, the logical destination) for outbound traffic.

        Args:
            orig: the original destination, if iptables redirected the connection.
            authority: the request's authority (absolute-form target, CONNECT
                target or Host); None for opaque TCP.
        """
        if orig is not None:
            return orig, orig
        if not authority:
            raise NoRoute(400 if authority is not None else 502,
                          "no Host header and no absolute URI: nowhere to route"
                          if authority is not None else
                          "not redirected and not HTTP: nowhere to route")
        hp = split_authority(authority)
        if hp is None:
            raise NoRoute(400, f"malformed authority {authority[:100]!r}")
        dst = hp
        connect = hp
        inv = self.inventory()
        if inv is not None:
            svc = inv.service(*hp)
            if svc is not None:
                if not svc.endpoints:
                    raise NoRoute(503, f"service {svc.name}.{svc.namespace} has no endpoints")
                key = (f"{svc.name}.{svc.namespace}", svc.port)
                turn = self._turn.get(key, 0)
                self._turn[key] = turn + 1
                ep = svc.endpoints[turn % len(svc.endpoints)]
                dst = connect = (ep.host, ep.port)
            pod = inv.resolve(*dst)
            if pod is not None and pod.inbound is not None and pod.address is not None \
                    and (pod.address.host, pod.address.port) == dst:
                connect = (pod.inbound.host, pod.inbound.port)
        if connect in self.own:
            raise NoRoute(508, "the request would loop back to this proxy")
        return connect, dst

    def workload(self, ip: str, port: int) -> Workload | None:
        """Names the pod at ``ip:port`` from the inventory (telemetry's dst labels)."""
        inv = self.inventory()
        if inv is None:
            return None
        pod = inv.resolve(ip, port)
        return pod.workload if pod is not None else None
