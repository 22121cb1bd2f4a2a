"""What investigating with tap costs: a filter over the feed's full ring, opening a
saved JSONL file for replay, exporting HAR.

The bars (issue 14): a filter over the 100,000-event ring in 0.5 s or less; a
1,000,000-event JSONL file opened for replay in 10 s or less; HAR export of
100,000 requests in 5 s or less.

    .venv/bin/python benchmarks/tap_investigate.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshtui.client.convert import tap_event
from meshtui.client.queries import TapQuery
from meshtui.client.replay_source import ReplaySource
from meshtui.client.tap_wire import StepTracker
from meshtui.model.feed_filter import FeedFilter
from meshtui.model.tap import RequestTracker, TapEvent
from meshtui.model.tap_json import tap_json_line
from meshtui.output.har import write_har
from meshtui.v1 import common_pb2

FILTERS = [
    "status>=500",
    "GET and path~^/api/(1|2)[0-9]? and not dst=deploy/svc3",
    "(status>=500 or latency>1200us) and authority~^svc",
    "h.user-agent~bench and bytes>100",
]


METHODS = ["GET", "GET", "POST", "PUT", "DELETE"]
AGENTS = [b"bench/1.0", b"curl/8.5.0", b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"]
STATUSES = [200, 200, 200, 200, 201, 204, 301, 404, 500, 503, 200]


def wire_events(requests: int) -> list[common_pb2.TapEvent]:
    """The live feed's ring holds wire events: three per request, as a proxy sends them."""
    src = common_pb2.Endpoint(ip="10.0.0.1", port=41000, workload=common_pb2.Workload(
        namespace="emojivoto", deployment="web", pod="web-1"))
    dsts = [common_pb2.Endpoint(ip=f"10.0.1.{i}", port=8080, workload=common_pb2.Workload(
        namespace="emojivoto", deployment=f"svc{i}", pod=f"svc{i}-0")) for i in range(8)]
    out = []
    for i in range(requests):
        common = dict(source=src, destination=dsts[i % 8], proxy_direction=common_pb2.OUTBOUND,
                      id=common_pb2.StreamId(base=i // 100, stream=i))
        t = 1_700_000_000_000_000 + i * 20
        out.append(common_pb2.TapEvent(**common, timestamp_us=t, request_init=(
            common_pb2.RequestInit(method=METHODS[i % 5], scheme="http",
                                   authority=f"svc{i % 8}.emojivoto:8080",
                                   path=f"/api/{i % 50}/items/{i * 7919 % 100_003}?page={i % 13}",
                                   headers=[common_pb2.Header(name="user-agent",
                                                              value=AGENTS[i % 3]),
                                            common_pb2.Header(name="x-request-id",
                                                              value=f"{i:08x}".encode()),
                                            common_pb2.Header(name="accept",
                                                              value=b"application/json")]))))
        out.append(common_pb2.TapEvent(**common, timestamp_us=t + 900, response_init=(
            common_pb2.ResponseInit(http_status=STATUSES[i % 11],
                                    since_request_init_us=900 + i % 700,
                                    headers=[common_pb2.Header(name="content-type",
                                                               value=b"application/json")]))))
        out.append(common_pb2.TapEvent(**common, timestamp_us=t + 1000, response_end=(
            common_pb2.ResponseEnd(since_request_init_us=1000 + i % 900,
                                   since_response_init_us=100, response_bytes=512))))
    return out


def bench_filters(events: int) -> None:
    recs, _ = StepTracker(capacity=50_000).join_wire(wire_events(events // 3))
    print(f"filter over a ring of {len(recs):,} events (the live feed's records):")
    for text in FILTERS:
        test = FeedFilter.parse(text).test
        t = time.perf_counter()
        shown = sum(1 for r in recs if r.passes(test))  # as the feed asks
        took = time.perf_counter() - t
        print(f"  {took:6.3f} s  {shown:>7,} shown  {text}")


def model_events(requests: int) -> list[TapEvent]:
    """The same traffic as model events (what a replay makes of a file)."""
    return [ev for ev in map(tap_event, wire_events(requests)) if ev is not None]


def bench_replay(path: Path, events: int) -> None:
    size = path.stat().st_size
    source = ReplaySource(path)
    tracker = StepTracker(capacity=50_000, horizon=events)

    async def read_all() -> int:
        n = 0
        async for batch in source.tap(TapQuery("namespace", None, None)):
            recs, _ = tracker.join_events(batch.events)  # as the feed takes a batch
            n += len(recs)
        return n

    t = time.perf_counter()
    n = asyncio.run(read_all())
    took = time.perf_counter() - t
    print(f"replay: {n:,} events ({size / 1e6:,.0f} MB of JSONL) read and joined "
          f"in {took:.2f} s")


def write_file(events: int, path: Path) -> Path:
    with path.open("w") as f:
        for ev in model_events(events // 3):
            f.write(tap_json_line(ev) + "\n")
    return path


def bench_replay_app(path: Path, ring: int) -> None:
    """``meshtui tap --replay FILE`` as a user meets it: the app started headless, timed
    until the whole file is in the feed, on screen, and the feed scrolls."""
    from meshtui.tui.app import MeshApp
    from meshtui.tui.feed import FeedView

    app = MeshApp(ReplaySource(path), TapQuery("namespace", None, None), buffer=ring,
                  title="tap ns (replay)")

    async def go() -> tuple[float, float, list[float], int]:
        t = time.perf_counter()
        async with app.run_test(size=(160, 40)) as pilot:
            screen = app.screen
            feed = screen.query_one(FeedView)
            while not feed.shown:
                await asyncio.sleep(0.01)
            first = time.perf_counter() - t
            while getattr(screen, "state", "") not in ("stream ended",) and \
                    not str(getattr(screen, "state", "")).startswith("error"):
                await asyncio.sleep(0.02)
            await pilot.press("home")
            await pilot.pause()
            opened = time.perf_counter() - t
            keys = []
            for key in ["pagedown"] * 10 + ["down"] * 10 + ["end", "up", "pageup"]:
                k0 = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                keys.append(time.perf_counter() - k0)
            return first, opened, keys, feed.shown

    first, opened, keys, shown = asyncio.run(go())
    keys.sort()
    print(f"replay in the TUI: the first events on screen {first:.2f} s after start; all "
          f"{shown:,} in the feed, at its top and scrolling, after {opened:.2f} s; "
          f"a scroll key answered median "
          f"{keys[len(keys) // 2] * 1e3:.0f} ms, max {keys[-1] * 1e3:.0f} ms; "
          f"resident {_rss_mb():,.0f} MB")


def _rss_mb() -> float:
    """Resident memory now (the file was written by another process: not counted)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_har(requests: int, tmp: Path) -> None:
    tracker = RequestTracker(capacity=requests)
    done = [r for r in map(tracker.observe, model_events(requests)) if r.complete]
    t = time.perf_counter()
    n = write_har(str(tmp / "export.har"), done)
    took = time.perf_counter() - t
    print(f"HAR export: {n:,} requests in {took:.2f} s "
          f"({(tmp / 'export.har').stat().st_size / 1e6:,.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--replay-events", type=int, default=1_000_000)
    ap.add_argument("--har-requests", type=int, default=100_000)
    ap.add_argument("--app-only", action="store_true", help="only the replay in the TUI")
    ap.add_argument("--write", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write:
        write_file(args.replay_events, Path(args.write))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if not args.app_only:
            bench_filters(args.events)
            bench_har(args.har_requests, Path(tmp))
        path = Path(tmp) / "saved.jsonl"
        # Written by another process, so that the figures below hold only the replay.
        subprocess.run([sys.executable, __file__, "--write", str(path),
                        "--replay-events", str(args.replay_events)], check=True)
        if not args.app_only:
            bench_replay(path, args.replay_events)
        bench_replay_app(path, args.replay_events)


if __name__ == "__main__":
    main()
