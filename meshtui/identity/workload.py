"""A workload's side of identity: its key, its certificate, its TLS contexts, renewal.

The key is made in memory and never leaves the process. The certificate is asked for
at start and again once :data:`RENEW_AT` of its life has passed; each renewal builds new
TLS contexts that new connections use, while connections already up keep the session
they negotiated — renewal drops nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshtui.identity import certs
from meshtui.identity.names import CONTROLLER_IDENTITY, LINK_ALPN, RENEW_AT
from meshtui.v1 import identity_pb2, identity_pb2_grpc

log = logging.getLogger("meshtui.identity")
# A failed request for a certificate is tried again this soon (the old one still serves).
RETRY_S = 2.0


class IdentityError(RuntimeError):
    """No certificate could be had; the message says why (refused, unreachable).
    ``retry``: the controller could not be reached (it may be starting), as opposed
    to a refusal."""

    def __init__(self, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Bundle:
    """One issued certificate with what a TLS context is built from."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    anchor: x509.Certificate

    @property
    def name(self) -> str:
        return certs.dns_names(self.leaf)[0]

    @property
    def renew_at(self) -> dt.datetime:
        start, end = self.leaf.not_valid_before_utc, self.leaf.not_valid_after_utc
        return start + (end - start) * RENEW_AT


#: Sends a CSR; the second argument is the trust anchor the endpoint's TLS certificate
#: must chain to (None: none yet, the endpoint's own is taken).
Ask = Callable[[bytes, x509.Certificate | None], Awaitable[identity_pb2.CertifyResponse]]
DER = serialization.Encoding.DER


def grpc_asker(controller: str, namespace: str, pod: str, token: str | Callable[[], str],
               timeout_s: float = 5.0) -> Ask:
    """Asks the controller's Identity service at ``controller`` (HOST:PORT of its TLS
    port). The token is sent only once the endpoint has shown a certificate for the
    controller's identity chaining to the anchor; ``token`` may be a function, read at
    each request (a token file written again before the token expires)."""
    async def ask(csr_der: bytes, anchor: x509.Certificate | None
                  ) -> identity_pb2.CertifyResponse:
        if anchor is None:
            anchor = await presented_anchor(controller, timeout_s)
        creds = grpc.ssl_channel_credentials(root_certificates=certs.cert_pem(anchor))
        async with grpc.aio.secure_channel(controller, creds, options=[
                ("grpc.ssl_target_name_override", CONTROLLER_IDENTITY),
                ("grpc.enable_http_proxy", 0)]) as ch:
            stub = identity_pb2_grpc.IdentityStub(ch)
            try:
                resp = await stub.Certify(identity_pb2.CertifyRequest(
                    namespace=namespace, pod=pod, csr_der=csr_der,
                    token=token() if callable(token) else token), timeout=timeout_s)
            except grpc.aio.AioRpcError as e:
                raise _failure(controller, e) from None
        if resp.trust_anchor_der != anchor.public_bytes(DER):
            raise IdentityError("the controller answered with another trust anchor than "
                                "the one its TLS certificate chains to")
        return resp
    return ask


def _failure(controller: str, e: grpc.aio.AioRpcError) -> IdentityError:
    details = e.details() or ""
    if e.code() == grpc.StatusCode.UNAVAILABLE and "handshake" in details.lower():
        # Nothing was sent: the endpoint is not the mesh's (or not TLS at all).
        return IdentityError(f"identity from {controller}: the endpoint does not present "
                             f"the controller's identity under the trust anchor this proxy "
                             f"holds ({details})")
    retry = e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return IdentityError(f"identity from {controller}: {details}", retry)


async def presented_anchor(controller: str, timeout_s: float = 5.0) -> x509.Certificate:
    """The trust anchor the chain of the identity endpoint at ``controller`` ends with,
    its first certificate naming the controller's identity (pinning on first use: the
    endpoint is believed to be the controller's, once)."""
    host, _, port = controller.rpartition(":")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # nothing to check against yet: checked below
    ctx.set_alpn_protocols(["h2"])
    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection(
            host.strip("[]"), int(port), ssl=ctx, server_hostname=CONTROLLER_IDENTITY),
            timeout_s)
    except ssl.SSLError as e:
        raise IdentityError(f"identity from {controller}: no TLS there ({e.reason})"
                            ) from None
    except (OSError, TimeoutError) as e:
        raise IdentityError(f"identity from {controller}: {e or 'timed out'}", True) from None
    try:
        ders = _unverified_chain(w.get_extra_info("ssl_object"))
    finally:
        w.close()
    chain = [x509.load_der_x509_certificate(d) for d in ders]
    if len(chain) >= 2 and certs.dns_names(chain[0]) == [CONTROLLER_IDENTITY] and \
            chain[-1].subject == chain[-1].issuer and \
            certs.chains_to(chain[0], tuple(chain[1:-1]), chain[-1]):
        return chain[-1]
    raise IdentityError(f"identity from {controller}: the endpoint's certificate is not the "
                        "controller's under a trust anchor")


def _unverified_chain(obj: Any) -> list[bytes]:
    """The certificates the TLS peer sent, DER (public from Python 3.13, private before)."""
    get = getattr(obj, "get_unverified_chain", None) or obj._sslobj.get_unverified_chain
    return [c if isinstance(c, bytes) else c.public_bytes(_ENCODING_DER) for c in get()]


# ssl's private constant for DER, what its certificate objects are asked for before 3.13.
_ENCODING_DER = 2


class WorkloadIdentity:
    """Holds ``name``'s certificate, asks ``ask`` for it, and renews it until stopped."""

    def __init__(self, name: str, ask: Ask, anchor: x509.Certificate | None = None) -> None:
        """``anchor``: the trust anchor, given out of band; without it, the first answer's
        is kept, and no later answer may change it."""
        self.name = name
        self._ask = ask
        self.anchor = anchor
        self._key = certs.new_key()
        self.bundle: Bundle | None = None
        self.renewals = 0
        #: Certificates received (the first one included) and requests that failed, as
        #: Linkerd's proxy counts them in identity_cert_refreshes_total.
        self.refreshes = 0
        self.refresh_errors = 0
        #: Wall-clock seconds when the current certificate arrived.
        self.refreshed_at = 0.0
        self.server_ctx: ssl.SSLContext | None = None
        self.client_ctx: ssl.SSLContext | None = None
        self.link_ctx: ssl.SSLContext | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_s: float = 0.0) -> Bundle:
        """Gets the first certificate and starts renewing. IdentityError if refused, or
        if the controller cannot be reached within ``wait_s`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + wait_s
        while True:
            try:
                b = await self.refresh()
                break
            except IdentityError as e:
                if not e.retry or loop.time() >= end:
                    raise
                await asyncio.sleep(0.2)
        self._task = asyncio.create_task(self._renew_loop())
        return b

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> Bundle:
        try:
            b = await self._refresh()
        except (IdentityError, ValueError, OSError):
            self.refresh_errors += 1
            raise
        self.refreshes += 1
        self.refreshed_at = time.time()
        return b

    async def _refresh(self) -> Bundle:
        resp = await self._ask(certs.make_csr(self._key, self.name), self.anchor)
        leaf = x509.load_der_x509_certificate(resp.leaf_der)
        chain = tuple(x509.load_der_x509_certificate(d) for d in resp.intermediates_der)
        anchor = x509.load_der_x509_certificate(resp.trust_anchor_der)
        if certs.dns_names(leaf) != [self.name] or leaf.public_key() != self._key.public_key():
            raise IdentityError(f"the controller issued a certificate that is not {self.name}'s")
        if self.anchor is not None and anchor != self.anchor:
            raise IdentityError("the controller answered with another trust anchor than "
                                "the one this proxy trusts")
        if not certs.chains_to(leaf, chain, anchor):
            raise IdentityError("the controller's certificate does not chain to its anchor")
        self.anchor = anchor
        b = Bundle(leaf, chain, anchor)
        self.server_ctx, self.client_ctx, self.link_ctx = contexts(self._key, b)
        self.bundle = b
        return b

    async def _renew_loop(self) -> None:
        while True:
            assert self.bundle is not None
            wait = (self.bundle.renew_at - certs.now()).total_seconds()
            await asyncio.sleep(max(0.0, wait))
            try:
                await self.refresh()
            except (IdentityError, ValueError, OSError) as e:
                log.warning("identity: renewal failed, retrying in %.0f s: %s", RETRY_S, e)
                await asyncio.sleep(RETRY_S)
                continue
            self.renewals += 1
            log.info("identity: renewed %s, valid until %s", self.name,
                     self.bundle.leaf.not_valid_after_utc.isoformat())


class Contexts(NamedTuple):
    """A workload's TLS contexts, all presenting its certificate and requiring the peer's."""

    server: ssl.SSLContext
    client: ssl.SSLContext  # one connection per TLS connection
    link: ssl.SSLContext  # offers the link (ALPN LINK_ALPN): many connections over one


def contexts(key: certs.PrivateKey, b: Bundle) -> Contexts:
    """Contexts presenting ``b``'s certificate, trusting only its anchor, and each
    requiring the other side's certificate (mutual TLS)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    link = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # ssl loads keys only from files: a private directory, gone once they are read.
    with tempfile.TemporaryDirectory(prefix="meshtui-id-") as d:
        crt, pem_key, ca = (os.path.join(d, n) for n in ("crt.pem", "key.pem", "ca.pem"))
        certs.write_private(Path(crt), b"".join(certs.cert_pem(c) for c in (b.leaf, *b.chain)))
        certs.write_private(Path(pem_key), certs.key_pem(key))
        certs.write_private(Path(ca), certs.cert_pem(b.anchor))
        for ctx in (server, client, link):
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_cert_chain(crt, pem_key)
            ctx.load_verify_locations(ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    # Peers are named by identity, not host: the caller checks the name it expects.
    client.check_hostname = link.check_hostname = False
    # gRPC clients (the controller at a tap port) insist on ALPN; a caller's proxy
    # offers the link; a client offering neither gets a connection per TLS connection.
    server.set_alpn_protocols([LINK_ALPN, "h2", "http/1.1"])
    link.set_alpn_protocols([LINK_ALPN])
    return Contexts(server, client, link)
