"""The Identity gRPC service: signs a proxy's CSR for the pod the inventory knows."""

from __future__ import annotations

import datetime as dt
import logging

import grpc
from cryptography.hazmat.primitives import serialization

from meshtui.controller.store import MeshStore
from meshtui.identity.authority import Authority, Refused
from meshtui.v1 import identity_pb2, identity_pb2_grpc

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
                  for (ns, pod), (i, n) in self.certified.items()])


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)
