"""The controller's certificate authority: trust anchor, issuer, pod tokens, signing.

Created at first start in the controller's state directory (every file 0600) or read
from files an operator gives. It signs a CSR only when its single DNS name is the
identity the inventory gives the asking pod and the token is that pod's and current:
the token stands in for the (bound, expiring) Kubernetes service-account token Linkerd's
identity service reviews.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from meshtui.identity import certs
from meshtui.identity.names import LEAF_LIFETIME_S, TOKEN_LIFETIME_S, TRUST_DOMAIN, identity_name

ANCHOR_LIFETIME = dt.timedelta(days=365)
ISSUER_LIFETIME = dt.timedelta(days=365)
# The files of a state directory, one definition for the controller, `check` and the demo.
ANCHOR_CRT, ANCHOR_KEY = "anchor.crt", "anchor.key"
ISSUER_CRT, ISSUER_KEY = "issuer.crt", "issuer.key"
TOKEN_SECRET = "pod-token.secret"


class Refused(Exception):
    """A CSR the authority will not sign; the message says why, for the asking proxy."""


@dataclass
class Issued:
    leaf: x509.Certificate
    issuer: x509.Certificate
    anchor: x509.Certificate


class Authority:
    def __init__(self, anchor: x509.Certificate, issuer: x509.Certificate,
                 issuer_key: certs.PrivateKey, token_secret: bytes, *,
                 leaf_lifetime_s: float = LEAF_LIFETIME_S) -> None:
        self.anchor = anchor
        self.issuer = issuer
        self.issuer_key = issuer_key
        self._secret = token_secret
        self.leaf_lifetime = dt.timedelta(seconds=leaf_lifetime_s)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, **kw: float) -> Authority:
        """Reads the anchor and issuer from ``state_dir/identity``, creating them first."""
        d = Path(state_dir) / "identity"
        if not (d / ISSUER_KEY).exists():
            _create(d)
        if not (d / TOKEN_SECRET).exists():
            certs.write_private(d / TOKEN_SECRET, secrets.token_bytes(32))
        return cls.from_files(d / ANCHOR_CRT, d / ISSUER_CRT, d / ISSUER_KEY,
                              d / TOKEN_SECRET, **kw)

    @classmethod
    def from_files(cls, anchor_crt: Path, issuer_crt: Path, issuer_key: Path,
                   token_secret: Path, **kw: float) -> Authority:
        anchor = x509.load_pem_x509_certificate(anchor_crt.read_bytes())
        issuer = x509.load_pem_x509_certificate(issuer_crt.read_bytes())
        key = certs.load_key(issuer_key)
        if key.public_key() != issuer.public_key():
            raise ValueError(f"{issuer_key} is not the key of {issuer_crt}")
        issuer.verify_directly_issued_by(anchor)
        return cls(anchor, issuer, key, token_secret.read_bytes(), **kw)

    def pod_token(self, namespace: str, pod: str, *, lifetime_s: float = TOKEN_LIFETIME_S,
                  now: float | None = None) -> str:
        """The token a pod's proxy is given, ``<end>.<mac>``: good until ``end`` (Unix
        seconds), which the MAC covers (derived: nothing per pod is stored)."""
        end = int((time.time() if now is None else now) + lifetime_s)
        return f"{end}.{self._mac(namespace, pod, end)}"

    def _mac(self, namespace: str, pod: str, end: int) -> str:
        msg = f"{namespace}/{pod}/{end}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def check_token(self, token: str, namespace: str, pod: str,
                    now: float | None = None) -> None:
        """Refused unless ``token`` is ``pod``'s and has not expired."""
        end, _, mac = token.partition(".")
        if not (end.isascii() and end.isdigit() and len(end) <= 12) or not \
                hmac.compare_digest(mac.encode(), self._mac(namespace, pod, int(end)).encode()):
            raise Refused(f"bad token for pod {namespace}/{pod}")
        if int(end) <= (time.time() if now is None else now):
            at = dt.datetime.fromtimestamp(int(end), dt.UTC).isoformat(timespec="seconds")
            raise Refused(f"the token of pod {namespace}/{pod} expired at {at}")

    def sign(self, csr_der: bytes, *, namespace: str, pod: str, token: str,
             serviceaccount: str | None) -> Issued:
        """Signs for ``pod``; ``serviceaccount`` is the inventory's (None: no such pod)."""
        self.check_token(token, namespace, pod)
        if serviceaccount is None:
            raise Refused(f"no pod {namespace}/{pod} in the inventory")
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError:
            raise Refused("not a DER certificate signing request") from None
        if not csr.is_signature_valid:
            raise Refused("the CSR's signature does not verify")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Refused("the CSR's key is not ECDSA")
        want = identity_name(serviceaccount, namespace)
        names = certs.dns_names(csr)
        if names != [want]:
            raise Refused(f"pod {namespace}/{pod} may only ask for {want}, not {names}")
        return self.issue(want, key)

    def issue(self, name: str, key: ec.EllipticCurvePublicKey) -> Issued:
        """A certificate for ``name`` (no checks: for the controller's own identity)."""
        # Never past the issuer's own end: a leaf that outlives it would not verify.
        left = self.issuer.not_valid_after_utc - certs.now()
        leaf = certs.build_cert(subject=name, public_key=key, issuer=self.issuer.subject,
                                signer=self.issuer_key,
                                lifetime=max(dt.timedelta(0), min(self.leaf_lifetime, left)),
                                ca_pathlen=None)
        return Issued(leaf, self.issuer, self.anchor)


def _create(d: Path) -> None:
    anchor_key, issuer_key = certs.new_key(), certs.new_key()
    anchor = certs.build_cert(subject=f"root.identity.{TRUST_DOMAIN}",
                              public_key=anchor_key.public_key(), issuer=None,
                              signer=anchor_key, lifetime=ANCHOR_LIFETIME, ca_pathlen=1)
    issuer = certs.build_cert(subject=f"identity.{TRUST_DOMAIN}",
                              public_key=issuer_key.public_key(), issuer=anchor.subject,
                              signer=anchor_key, lifetime=ISSUER_LIFETIME, ca_pathlen=0)
    certs.write_private(d / ANCHOR_KEY, certs.key_pem(anchor_key))
    certs.write_private(d / ANCHOR_CRT, certs.cert_pem(anchor))
    certs.write_private(d / ISSUER_CRT, certs.cert_pem(issuer))
    # Last: its presence is what says the directory is complete.
    certs.write_private(d / ISSUER_KEY, certs.key_pem(issuer_key))
