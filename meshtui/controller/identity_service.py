"""The Identity gRPC service: signs a proxy's CSR for the pod the inventory knows."""

from __future__ import annotations

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
        return identity_pb2.CertifyResponse(
            leaf_der=got.leaf.public_bytes(DER),
            intermediates_der=[got.issuer.public_bytes(DER)],
            trust_anchor_der=got.anchor.public_bytes(DER),
            valid_until_ms=int(got.leaf.not_valid_after_utc.timestamp() * 1000))
