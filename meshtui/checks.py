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
            meshed_pods = [(r.namespace, r.name) for r in pods.resources if r.proxied_pods]
            out.extend(identity_results(status, meshed_pods, time.time()))
    return out


# Linkerd's check warns 60 days before the anchor or the issuer expires.
NEAR_EXPIRY_S = 60 * 86400


def identity_results(status: Any, meshed: list[tuple[str, str]], now: float) -> list[Result]:
    """The identity checks: anchor and issuer valid and not near expiry, and a current
    certificate for every meshed pod (``status``: an ``IdentityStatus``)."""
    from meshtui.model.sanitize import clean

    out = []
    for what, until_ms in (("trust anchor", status.anchor_not_after_ms),
                           ("issuer certificate", status.issuer_not_after_ms)):
        left = until_ms / 1000 - now
        out.append(Result(left > NEAR_EXPIRY_S, f"{what} is valid for at least 60 days",
                          "expired" if left <= 0 else f"expires in {left / 86400:.0f} days"))
    certified = {(p.namespace, p.pod): p.not_after_ms / 1000 for p in status.pods}
    stale = [f"{clean(ns)}/{clean(pod)}" for ns, pod in meshed
             if certified.get((ns, pod), 0.0) <= now]
    more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
    out.append(Result(not stale, "every meshed proxy holds a current certificate",
                      f"none issued or expired: {', '.join(stale[:5])}{more}"))
    return out


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
