"""Which way the controller reaches a proxy: through its own pod's outbound proxy (the
mesh watching itself), or straight to a tap port over mutual TLS with identity on."""

from __future__ import annotations

import grpc

from meshtui.controller.dial import Dialer, DialTls

TAP = "127.0.1.1:4190"
OWN = "127.0.1.9:4190"


def tls() -> DialTls:
    return DialTls(lambda: (grpc.ssl_channel_credentials(), float("inf")),
                   lambda addr: "web.ns.serviceaccount.identity.meshtui.local"
                   if addr == TAP else None)


def test_without_identity_the_proxies_are_reached_through_the_outbound_port() -> None:
    d = Dialer("127.0.1.9:4140")
    assert d.through_proxy(TAP) and d.through_proxy("127.0.1.2:4190")
    assert not d.through_proxy(OWN)  # its own pod's proxy: straight
    assert not Dialer().through_proxy(TAP)


def test_with_identity_a_meshed_tap_port_is_dialled_straight() -> None:
    """The controller pod's proxy would otherwise have to lend the controller's identity
    to whatever reaches its outbound port."""
    d = Dialer("127.0.1.9:4140", tls())
    assert not d.through_proxy(TAP)
    assert d.through_proxy("127.0.1.2:4190")  # no meshed pod's tap port: as before
