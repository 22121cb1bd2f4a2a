"""Builders of tap steps for the model's tests."""

from __future__ import annotations

from meshtui.model.inventory import Workload
from meshtui.model.tap import (
    Direction,
    Endpoint,
    Request,
    RequestInit,
    RequestTracker,
    ResponseEnd,
    ResponseInit,
    StreamId,
)

WEB = Endpoint("10.0.0.1", 41000, Workload("emojivoto", "web", "web-1"))
EMOJI = Endpoint("10.0.0.2", 8080, Workload("emojivoto", "emoji", "emoji-1"))
OUTSIDE = Endpoint("192.0.2.7", 55000)
T0 = 1_700_000_000_000_000


def steps(
    stream: int = 1, *, base: int = 1, method: str = "GET", path: str = "/api/list",
    authority: str = "emoji-svc.emojivoto:8080", status: int = 200, latency_us: int = 1200,
    total_us: int = 1500, src: Endpoint = WEB, dst: Endpoint = EMOJI,
    direction: Direction = Direction.OUTBOUND, grpc_status: int | None = None,
    reset_code: int | None = None, t0: int = T0, response_bytes: int = 512,
) -> tuple[RequestInit, ResponseInit, ResponseEnd]:
    """The three steps of one request as one proxy saw it."""
    common = dict(source=src, destination=dst, direction=direction,
                  stream=StreamId(base, stream))
    return (
        RequestInit(**common, timestamp_us=t0, method=method, scheme="http",
                    authority=authority, path=path, headers=((":method", method),)),
        ResponseInit(**common, timestamp_us=t0 + latency_us, status=status,
                     latency_us=latency_us),
        ResponseEnd(**common, timestamp_us=t0 + total_us, since_request_us=total_us,
                    duration_us=total_us - latency_us, response_bytes=response_bytes,
                    grpc_status=grpc_status, reset_code=reset_code),
    )


def joined(upto: int = 3, **kw: object) -> Request:
    """The record a fresh tracker makes of the first ``upto`` steps of one request."""
    tracker = RequestTracker()
    r = None
    for e in steps(**kw)[:upto]:  # type: ignore[arg-type]
        r = tracker.observe(e)
    assert r is not None
    return r
