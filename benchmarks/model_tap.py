"""How fast the pure tap model runs: building steps, joining them, filtering, routes.

The tap TUI must take 50,000 events a second; this prints what each model stage
costs per event on this machine, so the budget left for the UI is known.

    .venv/bin/python benchmarks/model_tap.py [--requests N]
"""

from __future__ import annotations

import argparse
import time

from meshtui.model.feed_filter import FeedFilter
from meshtui.model.inventory import Workload
from meshtui.model.routes import RouteTable
from meshtui.model.tap import (
    Direction,
    Endpoint,
    RequestInit,
    RequestTracker,
    ResponseEnd,
    ResponseInit,
    StreamId,
)


def build(n: int) -> list:
    src = Endpoint("10.0.0.1", 41000, Workload("emojivoto", "web", "web-1"))
    dsts = [Endpoint(f"10.0.1.{i}", 8080, Workload("emojivoto", f"svc{i}", f"svc{i}-0"))
            for i in range(8)]
    out = []
    for i in range(n):
        common = dict(source=src, destination=dsts[i % 8], direction=Direction.OUTBOUND,
                      stream=StreamId(i // 100, i))
        t = 1_700_000_000_000_000 + i * 20
        out.append(RequestInit(**common, timestamp_us=t, method="GET", scheme="http",
                               authority="svc.emojivoto:8080", path=f"/api/{i % 50}?x={i}",
                               headers=(("user-agent", "bench"),)))
        out.append(ResponseInit(**common, timestamp_us=t + 900, status=200 if i % 10 else 500,
                                latency_us=900 + i % 700))
        out.append(ResponseEnd(**common, timestamp_us=t + 1000, since_request_us=1000 + i % 900,
                               duration_us=100, response_bytes=512))
    return out


def rate(label: str, events: int, seconds: float) -> None:
    per = seconds / events * 1e6
    print(f"{label:<38} {events / seconds:>12,.0f} events/s  {per:6.2f} µs/event")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    n = ap.parse_args().requests
    t = time.perf_counter()
    events = build(n)
    rate("build frozen steps (3 per request)", len(events), time.perf_counter() - t)

    tracker = RequestTracker()
    t = time.perf_counter()
    reqs = [tracker.observe(e) for e in events]
    rate("RequestTracker.observe", len(events), time.perf_counter() - t)

    filt = FeedFilter.parse("GET status=5xx path~/api dst=deploy/svc2 latency>1ms")
    t = time.perf_counter()
    shown = sum(filt.matches(r) for r in reqs)
    rate("FeedFilter.matches (5 terms)", len(reqs), time.perf_counter() - t)

    table = RouteTable()
    t = time.perf_counter()
    for r in reqs[2::3]:
        table.observe(r)
    rate("RouteTable.observe (per request)", n, time.perf_counter() - t)
    t = time.perf_counter()
    rows = table.snapshot("count")
    print(f"snapshot of {len(rows)} routes: {(time.perf_counter() - t) * 1e3:.2f} ms;"
          f" filter kept {shown} of {len(reqs)} event lines;"
          f" tracker evicted {tracker.evicted}, completed {tracker.completed}")


if __name__ == "__main__":
    main()
