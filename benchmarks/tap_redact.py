"""What redaction costs the proxy's tap path, and the client's conversion.

The proxy redacts while a subscriber's stream builds its batch (never on the
data path itself), so the figure that matters is microseconds per event built:
``TapHub.take_batch`` over queued events of realistic requests (nine headers,
one of them a credential; half the paths with a query string), with redaction
off (``show_secrets``), with the defaults, and with the defaults plus user names
and a glob. The client's part is ``convert.tap_event`` (cleaning and redacting)
on the same events' wire form, with the defaults and with user names added.

Run: ``.venv/bin/python benchmarks/tap_redact.py [--events 200000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import time

from meshtui.client import convert
from meshtui.model import redact
from meshtui.model.redact import Redactor
from meshtui.proxy.tap_hub import TapHub
from meshtui.proxy.telemetry import Direction, Identity, Telemetry

HEADERS = [(b"host", b"web-svc:80"), (b"user-agent", b"bench/1"), (b"accept", b"*/*"),
           (b"accept-encoding", b"gzip"), (b"x-request-id", b"f00dfeed"),
           (b"content-type", b"application/json"), (b"x-api-key", b"k-1234567890"),
           (b"traceparent", b"00-abc-def-01"), (b"content-length", b"0")]
PATHS = ("/api/vote?choice=doughnut&token=abc123&id=7", "/api/list")


def queued(hub: TapHub, n: int) -> object:
    tel = Telemetry(Identity("emojivoto", "web", "web-0"), hub=hub)
    sub = hub.subscribe()
    for i in range(n // 3):
        obs = tel.request(Direction.INBOUND, ("10.0.0.9", 40000 + i % 1000),
                          ("10.0.0.1", 8080), i, "GET", "http", "web-svc:80",
                          PATHS[i % 2], HEADERS)
        obs.response_start(200, [(b"content-type", b"application/json"),
                                 (b"set-cookie", b"s=1")])
        obs.response_end(100)
    return sub


def build_us(n: int, **kw: object) -> float:
    hub = TapHub(lambda: 0.0, queue_capacity=n + 10, max_batch=n + 10,
                 max_batch_bytes=1 << 40, cpu_share=0, **kw)  # type: ignore[arg-type]
    sub = queued(hub, n)
    t0 = time.perf_counter()
    batch = hub.take_batch(sub)  # type: ignore[arg-type]
    spent = time.perf_counter() - t0
    assert len(batch.events) >= n - 3
    return spent / len(batch.events) * 1e6


def convert_us(n: int, names: tuple[str, ...]) -> float:
    hub = TapHub(lambda: 0.0, queue_capacity=n + 10, max_batch=n + 10,
                 max_batch_bytes=1 << 40, cpu_share=0, show_secrets=True)
    batch = hub.take_batch(queued(hub, n))  # type: ignore[arg-type]
    redact.use(names)
    t0 = time.perf_counter()
    for ev in batch.events:
        convert.tap_event(ev)
    spent = time.perf_counter() - t0
    redact.use(())
    return spent / len(batch.events) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    extra = Redactor(("x-tenant", "x-customer-id", "*pin*"))
    cases = {"off (show_secrets)": {"show_secrets": True}, "defaults": {},
             "defaults + 3 user names": {"redactor": extra}}
    best = {k: min(build_us(a.events, **kw) for _ in range(a.rounds)) for k, kw in cases.items()}
    base = best["off (show_secrets)"]
    print(f"proxy, building tap events ({a.events} events, best of {a.rounds}):")
    for k, v in best.items():
        print(f"  {k:<26} {v:6.2f} µs/event  ({v / base - 1:+.1%})")
    print("client, wire -> model event:")
    for label, names in (("defaults", ()), ("defaults + 3 user names",
                                            ("x-tenant", "x-customer-id", "*pin*"))):
        v = min(convert_us(a.events, names) for _ in range(a.rounds))
        print(f"  {label:<26} {v:6.2f} µs/event")


if __name__ == "__main__":
    main()
