"""Workload identity: names, the controller's certificate authority, the proxies' keys.

Every meshed pod is known by ``<serviceaccount>.<namespace>.serviceaccount.identity.<domain>``.
The controller holds a trust anchor and an issuer (ECDSA P-256); a proxy makes its key in
memory, sends a CSR naming its pod's identity with the token it was given at start, and
gets a certificate valid :data:`LEAF_LIFETIME_S`, which it renews at
:data:`RENEW_AT` of its life.
"""

from meshtui.identity.names import LEAF_LIFETIME_S, RENEW_AT, TRUST_DOMAIN, identity_name

__all__ = ["LEAF_LIFETIME_S", "RENEW_AT", "TRUST_DOMAIN", "identity_name"]
