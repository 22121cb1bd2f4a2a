"""The Identity gRPC service: signs a proxy's CSR for the pod the inventory knows.

``Certify`` carries the pod's token, so it is answered only on the controller's TLS
port (:func:`server_credentials`): its certificate names the controller's identity and
chains to the trust anchor the proxies hold, so a proxy knows whom it gives its token
to, and nobody on the path reads it. The API port, in plain, refuses it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import grpc
from cryptography.hazmat.primitives import serialization

from meshtui.controller.store import MeshStore, PodState
from meshtui.identity import certs
from meshtui.identity.authority import Authority, Refused
from meshtui.identity.names import CONTROLLER_IDENTITY, RENEW_AT, identity_name
from meshtui.v1 import identity_pb2, identity_pb2_grpc, proxy_pb2

log = logging.getLogger("meshtui.controller")
DER = serialization.Encoding.DER


class IdentityService(identity_pb2_grpc.IdentityServicer):
    def __init__(self, store: MeshStore, authority: Authority) -> None:
        self.store = store
        self.authority = authority
        self.issued = 0
        self.refused = 0
        # (namespace, pod) → the last certificate's (issued, notAfter), in ms
        self.certified: dict[tuple[str, str], tuple[int, int]] = {}

    async def Certify(self, request: identity_pb2.CertifyRequest,
                      context: grpc.aio.ServicerContext) -> identity_pb2.CertifyResponse:
        if context.auth_context().get("transport_security_type") != [b"ssl"]:
            self.refused += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                "Certify is answered only on the controller's identity "
                                "(TLS) port")
        st = self.store.pods.get((request.namespace, request.pod))
        sa = st.pod.service_account if st is not None and st.pod.meshed else None
        try:
            got = self.authority.sign(request.csr_der, namespace=request.namespace,
                                      pod=request.pod, token=request.token, serviceaccount=sa)
        except Refused as e:
            self.refused += 1
            log.warning("identity: refused %s/%s: %s", request.namespace, request.pod, e)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(e))
            raise
        self.issued += 1
        until = _ms(got.leaf.not_valid_after_utc)
        self.certified[(request.namespace, request.pod)] = (
            _ms(got.leaf.not_valid_before_utc), until)
        return identity_pb2.CertifyResponse(
            leaf_der=got.leaf.public_bytes(DER),
            intermediates_der=[got.issuer.public_bytes(DER)],
            trust_anchor_der=got.anchor.public_bytes(DER),
            valid_until_ms=until)

    async def Status(self, request: identity_pb2.IdentityStatusRequest,
                     context: grpc.aio.ServicerContext) -> identity_pb2.IdentityStatus:
        a = self.authority
        return identity_pb2.IdentityStatus(
            anchor_not_after_ms=_ms(a.anchor.not_valid_after_utc),
            issuer_not_after_ms=_ms(a.issuer.not_valid_after_utc),
            pods=[identity_pb2.CertifiedPod(namespace=ns, pod=pod, issued_ms=i, not_after_ms=n)
                  for (ns, pod), (i, n) in self.certified.items()],
            proxies=[_proxy_certificate(st) for st in self.store.states() if st.pod.meshed])


def _proxy_certificate(st: PodState) -> identity_pb2.ProxyCertificate:
    """What a meshed pod's proxy last said it holds, beside what it should hold: the
    proxy's word, kept from the scrapes, so a restarted controller knows it again
    at the first scrape rather than at the next renewal."""
    p = st.pod
    out = identity_pb2.ProxyCertificate(
        namespace=p.namespace, pod=p.name,
        expected_identity=identity_name(p.service_account, p.namespace),
        scraped=st.last_ok is not None, scraped_ms=int(st.last_ok_wall * 1000))
    if st.certificate is not None:
        name, not_before_ms, not_after_ms, refreshes, errors = st.certificate
        out.held.CopyFrom(proxy_pb2.HeldCertificate(
            identity=name, not_before_ms=not_before_ms, not_after_ms=not_after_ms,
            refreshes=refreshes, refresh_errors=errors))
    return out


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def server_credentials(authority: Authority) -> grpc.ServerCredentials:
    """The identity port's TLS: a certificate for the controller's identity, made again
    at :data:`RENEW_AT` of its life (each new connection gets the current one). The
    chain sent ends with the anchor, so that a proxy given none can pin it."""
    def config() -> tuple[grpc.ServerCertificateConfiguration, float]:
        key = certs.new_key()
        got = authority.issue(CONTROLLER_IDENTITY, key.public_key())
        chain = b"".join(certs.cert_pem(c) for c in (got.leaf, got.issuer, got.anchor))
        start = got.leaf.not_valid_before_utc.timestamp()
        end = got.leaf.not_valid_after_utc.timestamp()
        return (grpc.ssl_server_certificate_configuration([(certs.key_pem(key), chain)]),
                start + RENEW_AT * (end - start))

    first, renew = config()
    due = [renew]

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        if time.time() < due[0]:
            return None  # keep the current one
        cfg, due[0] = config()
        return cfg

    return grpc.dynamic_ssl_server_credentials(first, fetch,
                                               require_client_authentication=False)
