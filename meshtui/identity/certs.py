"""X.509 building blocks shared by the authority and the proxies (ECDSA P-256)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from itertools import pairwise
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey
# Clocks of the pods and the controller may differ a little: certificates start this early.
BACKDATE = dt.timedelta(seconds=60)


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_csr(key: PrivateKey, name: str) -> bytes:
    """A DER PKCS#10 request whose only DNS name is ``name``."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER)


def dns_names(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.DNSName))


def build_cert(*, subject: str, public_key: ec.EllipticCurvePublicKey, issuer: x509.Name | None,
               signer: PrivateKey, lifetime: dt.timedelta, ca_pathlen: int | None,
               not_before: dt.datetime | None = None) -> x509.Certificate:
    """A certificate: a CA one when ``ca_pathlen`` is given, else a leaf for ``subject``
    as a DNS name, usable both as client and server (mutual TLS)."""
    # Backdated by at most a tenth of the life, so short lives (tests) stay mostly ahead.
    back = min(BACKDATE, lifetime / 10)
    start = (not_before or now()) - back
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (x509.CertificateBuilder()
         .subject_name(name).issuer_name(issuer or name).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(start + back + lifetime)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if ca_pathlen is not None:
        b = (b.add_extension(x509.BasicConstraints(ca=True, path_length=ca_pathlen), True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), True))
    else:
        b = (b.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
             .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                          False, False), True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]), False)
             .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), False))
    return b.sign(signer, hashes.SHA256())


def chains_to(leaf: x509.Certificate, chain: tuple[x509.Certificate, ...],
              anchor: x509.Certificate) -> bool:
    """Whether ``leaf`` is signed by the first of ``chain``, each by the next, the last
    by ``anchor`` (names, signatures and validity dates)."""
    at = now()
    links = [leaf, *chain, anchor]
    for cert, issuer in pairwise(links):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            return False
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
    return True


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an ECDSA key")
    return key


def write_private(path: Path, data: bytes) -> None:
    """Writes a file only its owner can read: a new file, created 0600 beside ``path``
    (never through a link) and renamed over it, so that no reader ever sees it
    half-written or with an older file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

