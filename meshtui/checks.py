"""The checks behind ``meshtui check``, printed the way ``linkerd check`` does."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

OK, FAIL = "√", "×"


@dataclass
class Result:
    ok: bool
    text: str
    hint: str = ""


async def _once(server: str) -> list[Result]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from meshtui.client.controller import ControllerClient
    from meshtui.errors import RuntimeFailure
    from meshtui.model.sanitize import clean
    from meshtui.v1 import common_pb2

    out: list[Result] = []
    async with ControllerClient(server, deadline_s=3.0) as client:
        try:
            await client.wait_ready(3.0)
        except RuntimeFailure as e:
            return [Result(False, f"controller is reachable at {server}", str(e))]
        out.append(Result(True, f"controller is reachable at {server}"))
        try:
            health = await health_pb2_grpc.HealthStub(client.channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=3.0)
            serving = health.status == health_pb2.HealthCheckResponse.SERVING
            out.append(Result(serving, "controller reports SERVING",
                              "" if serving else f"health status {health.status}"))
        except grpc.aio.AioRpcError as e:
            out.append(Result(False, "controller reports SERVING",
                              clean(e.details() or str(e.code()))))
        try:
            pods = await client.list_resources(common_pb2.ResourceSelector(type=common_pb2.POD))
        except RuntimeFailure as e:
            out.append(Result(False, "controller lists the mesh's pods", clean(str(e))))
            return out
        meshed = sum(r.meshed_pods for r in pods.resources)
        out.append(Result(True, f"{len(pods.resources)} pods known, {meshed} meshed"))
        down = [r for r in pods.resources if r.proxied_pods > r.meshed_pods]
        if down:
            # Names are the inventory's, whoever wrote it: shown, never obeyed.
            names = ", ".join(f"{clean(r.namespace)}/{clean(r.name)}" for r in down[:5])
            more = f" and {len(down) - 5} more" if len(down) > 5 else ""
            out.append(Result(False, "every proxy is reachable",
                              f"unreachable: {names}{more}"))
        else:
            out.append(Result(True, "every proxy is reachable"))
        try:
            status = await client.identity_status()
        except RuntimeFailure as e:
            out.append(Result(False, "controller reports its identity", clean(str(e))))
            return out
        if status is not None:
            out.extend(identity_results(
                status, sum(r.proxied_pods for r in pods.resources), time.time()))
    return out


# Linkerd's check warns 60 days before the anchor or the issuer expires.
NEAR_EXPIRY_S = 60 * 86400
# A proxy renews at 70 % of its certificate's life (16.8 h of 24): one whose certificate
# has less than this left has failed to renew for hours.
PROXY_NEAR_EXPIRY_S = 3600
# Pods named one line each under a failed check; the rest are counted.
SHOWN_PODS = 10


def identity_results(status: Any, meshed: int, now: float) -> list[Result]:
    """The identity checks: anchor and issuer valid and not near expiry, and every
    meshed pod's proxy reporting a current certificate for the identity the inventory
    gives it (``status``: an ``IdentityStatus``; ``meshed``: how many pods the
    controller lists as meshed, to tell a controller that reports no proxies)."""
    out = []
    for what, until_ms in (("trust anchor", status.anchor_not_after_ms),
                           ("issuer certificate", status.issuer_not_after_ms)):
        left = until_ms / 1000 - now
        out.append(Result(left > NEAR_EXPIRY_S, f"{what} is valid for at least 60 days",
                          "expired" if left <= 0 else f"expires in {left / 86400:.0f} days"))
    text = "every meshed proxy holds a current certificate for its identity"
    if meshed and not status.proxies:
        out.append(Result(False, text, "the controller does not say what its proxies "
                                       "hold (a controller older than this client?)"))
        return out
    bad = [f"{_pod(p)}: {why}" for p in status.proxies
           if (why := proxy_certificate_problem(p, now))]
    more = [f"and {len(bad) - SHOWN_PODS} more"] if len(bad) > SHOWN_PODS else []
    out.append(Result(not bad, text, "\n    ".join(bad[:SHOWN_PODS] + more)))
    return out


def proxy_certificate_problem(p: Any, now: float) -> str:
    """Why one pod's proxy fails the certificate check ('' when it passes), from what
    it reported in the controller's last scrape of it (``p``: a ``ProxyCertificate``)."""
    from meshtui.model.sanitize import clean

    if not p.scraped:
        return "not scraped yet since the controller started"
    if not p.HasField("held"):
        return "its proxy reports no certificate (running without identity?)"
    held = p.held
    if held.identity != p.expected_identity:
        return (f"holds a certificate for {clean(held.identity)}, "
                f"not {clean(p.expected_identity)}")
    if held.not_before_ms / 1000 > now:
        return f"its certificate is valid only in {_span(held.not_before_ms / 1000 - now)}"
    left = held.not_after_ms / 1000 - now
    if left <= 0:
        return f"its certificate expired {_span(-left)} ago"
    if left <= PROXY_NEAR_EXPIRY_S:
        return f"its certificate expires in {_span(left)}"
    return ""


def _pod(p: Any) -> str:
    # Names are the inventory's, whoever wrote it: shown, never obeyed.
    from meshtui.model.sanitize import clean

    return f"{clean(p.namespace)}/{clean(p.pod)}"


def _span(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} days"


async def run_checks(server: str, wait_s: float = 0.0) -> int:
    deadline = time.monotonic() + wait_s
    while True:
        results = await _once(server)
        if all(r.ok for r in results) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    print("meshtui-controller\n------------------")
    for r in results:
        print(f"{OK if r.ok else FAIL} {r.text}")
        if r.hint and not r.ok:
            print(f"    {r.hint}")
    good = all(r.ok for r in results)
    print(f"\nStatus check results are {OK if good else FAIL}")
    sys.stdout.flush()
    return 0 if good else 1
