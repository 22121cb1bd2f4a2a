"""Identity names and lifetimes: the one definition every layer reads."""

from __future__ import annotations

import ssl

TRUST_DOMAIN = "meshtui.local"
LEAF_LIFETIME_S = 24 * 3600.0
# A proxy asks for a new certificate once this share of the current one's life has passed.
RENEW_AT = 0.7
# A pod token is good for this long (it carries its end): one taken from a pod's file or
# its first contact is of no use a day later. Whoever hands pods their tokens writes new
# ones before then, as the kubelet refreshes a projected service-account token.
TOKEN_LIFETIME_S = 24 * 3600.0
#: The ALPN name by which two meshed proxies agree to carry many connections over one
#: mutual-TLS connection (meshtui.proxy.link).
LINK_ALPN = "meshtui-link/1"


def identity_name(serviceaccount: str, namespace: str, domain: str = TRUST_DOMAIN) -> str:
    """The DNS name a pod's certificate carries, as Linkerd spells it."""
    return f"{serviceaccount}.{namespace}.serviceaccount.identity.{domain}"

#: The controller's own identity: the only one a proxy's tap/metrics port serves, and
#: the one its identity endpoint presents to the proxies asking for certificates.
CONTROLLER_SERVICEACCOUNT, CONTROLLER_NAMESPACE = "controller", "meshtui"
CONTROLLER_IDENTITY = identity_name(CONTROLLER_SERVICEACCOUNT, CONTROLLER_NAMESPACE)


def peer_identity(obj: ssl.SSLObject | ssl.SSLSocket) -> str:
    """The DNS name of a verified peer's certificate ('' if none)."""
    cert = obj.getpeercert() or {}
    for entry in cert.get("subjectAltName", ()):
        if isinstance(entry, tuple) and entry[0] == "DNS":
            return str(entry[1])
    return ""
