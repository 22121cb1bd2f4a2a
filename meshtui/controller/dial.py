"""How the controller reaches the proxies' tap ports (``Metrics.Scrape``, ``Tap.Observe``).

Directly, by default. Behind a proxy of its own in explicit mode (no
iptables), it dials that proxy's outbound port instead and names the target
proxy as the call's ``:authority``; the outbound proxy routes the HTTP/2
connection by it, so the scrapes and tap streams are the controller pod's
outbound traffic, counted and tapped like any app's — the mesh watching
itself. Under iptables the same holds without this: the pod's rules hand the
controller's connections to its proxy (the targets' tap ports are skipped only
by the inbound rules, as Linkerd's proxy-init skips 4190 and 4191).

Its own pod's proxy is dialled directly either way: a proxy does not route to
its own listeners, and iptables leaves loopback traffic alone.

With identity on, a meshed proxy's tap port is dialled directly too, over mutual
TLS with the controller's own certificate: the tap gate admits that identity
alone, and the controller pod's proxy must not hold it for whoever can reach
its outbound port (it sends connections to tap ports on in plain, and the gate
cuts them). So with identity on, scrapes and tap streams are not its proxy's
outbound traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import grpc

CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
)


class DialTls:
    """With identity on: the controller's credentials for the proxies' tap ports, and
    the identity each proxy at an address must present (None: not a meshed pod's).

    ``issue`` makes a new certificate: (credentials, when to renew them, wall clock).
    Renewed as Linkerd's proxies renew theirs, at 70 % of its life; ``generation``
    counts the renewals, so that channels made with older credentials are made again
    before those expire.
    """

    def __init__(self, issue: Callable[[], tuple[grpc.ChannelCredentials, float]],
                 server_identity: Callable[[str], str | None],
                 clock: Callable[[], float] = time.time) -> None:
        self._issue = issue
        self.server_identity = server_identity
        self._clock = clock
        self.credentials, self._renew_at = issue()
        self.generation = 0

    def refresh(self) -> bool:
        """Renews the certificate when due; True if it did."""
        if self._clock() < self._renew_at:
            return False
        self.credentials, self._renew_at = self._issue()
        self.generation += 1
        return True


class Dialer:
    """Opens channels to proxies, through ``via`` (an outbound proxy's HOST:PORT) if set.

    With ``tls``, a channel to a meshed proxy's tap port is mutual TLS with the
    controller's identity, always dialled directly (see the module's note).
    """

    def __init__(self, via: str | None = None, tls: DialTls | None = None) -> None:
        self.via = via
        self.tls = tls
        self._own_host = via.rpartition(":")[0] if via else None

    def through_proxy(self, addr: str) -> bool:
        """Whether a channel to ``addr`` goes through the outbound proxy."""
        if self.via is None or addr.rpartition(":")[0] == self._own_host:
            return False
        return self.tls is None or not self.tls.server_identity(addr)

    def channel(self, addr: str) -> grpc.aio.Channel:
        if not self.through_proxy(addr):
            name = self.tls.server_identity(addr) if self.tls is not None else None
            if self.tls is not None and name:
                self.tls.refresh()
                return grpc.aio.secure_channel(addr, self.tls.credentials, options=[
                    *CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", name),
                    ("grpc.enable_http_proxy", 0)])
            return grpc.aio.insecure_channel(addr, options=list(CHANNEL_OPTIONS))
        assert self.via is not None
        return grpc.aio.insecure_channel(self.via, options=[
            *CHANNEL_OPTIONS,
            ("grpc.default_authority", addr),
            # One connection per target: the proxy routes a connection by its first
            # stream, so two targets must never share one.
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.enable_http_proxy", 0),
        ])
