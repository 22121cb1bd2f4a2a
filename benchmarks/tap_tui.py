"""The tap feed under a flood: the real TUI, headless, fed over gRPC.

A stand-in controller (a separate process, serving the real ResourceTap
service from the generated code) streams batches of tap events at a fixed
rate; the app ingests them through its real gRPC source for ``--seconds``.
Targets: ≥ 50,000 events/s ingested and every one of them shown (taken
into the feed's view, none shed), a key answered within 100 ms, at most 30
redraws a second, resident memory flat once the ring is full, each event on
screen within 100 ms p99 of its arrival. ``--filter`` types a feed filter
first, as a user would.

Run: .venv/bin/python benchmarks/tap_tui.py [--rate 50000] [--seconds 60] [--filter TEXT]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import socket
import statistics
import time


def _batch(events: int):  # type: ignore[no-untyped-def]
    from meshtui.v1 import common_pb2, controller_pb2

    src = common_pb2.Endpoint(ip="10.0.0.1", port=5000, workload=common_pb2.Workload(
        namespace="emojivoto", deployment="vote-bot", pod="vote-bot-1"))
    dst = common_pb2.Endpoint(ip="10.0.0.2", port=8080, workload=common_pb2.Workload(
        namespace="emojivoto", deployment="web", pod="web-1"))
    out = []
    for i in range(events):
        e = common_pb2.TapEvent(source=src, destination=dst, proxy_direction=common_pb2.INBOUND,
                                id=common_pb2.StreamId(base=1, stream=i // 3), timestamp_us=i)
        kind = i % 3
        if kind == 0:
            e.request_init.CopyFrom(common_pb2.RequestInit(
                method="GET", scheme="http", authority="web-svc.emojivoto:80",
                path=f"/api/vote?choice=:{i % 20}:",
                headers=[common_pb2.Header(name="user-agent", value=b"vote-bot")]))
        elif kind == 1:
            e.response_init.CopyFrom(common_pb2.ResponseInit(
                http_status=500 if i % 60 == 1 else 200, since_request_init_us=1000 + i % 5000))
        else:
            e.response_end.CopyFrom(common_pb2.ResponseEnd(
                since_request_init_us=1100 + i % 5000, since_response_init_us=100,
                response_bytes=120))
        out.append(e)
    return controller_pb2.TapByResourceBatch(events=out)


def serve(port: int, rate: float, batch: int) -> None:
    """The stand-in controller: ``rate`` events a second, ``batch`` to a message."""
    import grpc

    from meshtui.v1 import controller_pb2_grpc

    msg = _batch(batch)

    class Tap(controller_pb2_grpc.ResourceTapServicer):
        async def Tap(self, request, context):  # type: ignore[no-untyped-def]
            interval = batch / rate
            next_t = time.monotonic()
            while True:
                await context.write(msg)
                next_t += interval
                delay = next_t - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 << 20)])
        controller_pb2_grpc.add_ResourceTapServicer_to_server(Tap(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def run(port: int, seconds: float, buffer: int, filter_text: str = "") -> None:
    from textual import events

    from meshtui.runtime import tune_gc_for_ui

    tune_gc_for_ui()  # as `meshtui tap` runs the app (meshtui.tui.app.run_app)
    from meshtui.client.controller_source import ControllerSource
    from meshtui.client.queries import TapQuery
    from meshtui.tui.app import MeshApp
    from meshtui.tui.feed import FeedView

    app = MeshApp(ControllerSource(f"127.0.0.1:{port}"), TapQuery("deployment", "emojivoto", "web",
                                                             max_rps=0), buffer=buffer)
    lat: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(0.5)
        if filter_text:  # typed as a user would: / TEXT Enter
            await pilot.press("slash", *filter_text, "enter")
        feed = app.screen.query_one(FeedView)
        # Time each batch from its arrival (add) to the frame that draws it.
        pending: list[tuple[float, int]] = []
        add, sync = feed.add, feed._sync

        def timed_add(items, tags=None):  # type: ignore[no-untyped-def]
            items = list(items)
            if items:  # a shed batch brings nothing to show
                pending.append((time.monotonic(), len(items)))
            add(items, tags)

        def timed_sync(scroll_end: bool) -> None:  # a frame that shows new items
            sync(scroll_end)
            now = time.monotonic()
            for t, n in pending:
                lat.extend([now - t] * max(1, n // 100))  # weighted by batch size
            pending.clear()

        feed.add = timed_add  # type: ignore[method-assign]
        feed._sync = timed_sync  # type: ignore[method-assign]

        screen = app.screen
        # A key's answer time: from the key event entering the app to the action it binds.
        answered = asyncio.Event()
        follow = feed.action_follow  # End is the focused feed's binding

        def timed_follow() -> None:
            follow()
            answered.set()

        feed.action_follow = timed_follow  # type: ignore[method-assign]
        t0, n0, f0 = time.monotonic(), screen.received, feed.frames  # type: ignore[attr-defined]
        v0 = feed.admitted
        keys: list[float] = []
        rss: list[tuple[float, float]] = []
        while time.monotonic() - t0 < seconds:
            answered.clear()
            k = time.perf_counter()
            app.post_message(events.Key("end", None))
            await asyncio.wait_for(answered.wait(), 30)
            keys.append((time.perf_counter() - k) * 1000)
            rss.append((time.monotonic() - t0, rss_mb()))
            await pilot.pause(1.0)
        wall = time.monotonic() - t0
        got = screen.received - n0  # type: ignore[attr-defined]
        shed = screen.shed  # type: ignore[attr-defined]
        frames = feed.frames - f0
        viewed = feed.admitted - v0
        full_at = next((t for t, _ in rss if feed.ring.next_seq >= feed.ring.capacity), None)
    lat.sort()
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
    print(f"received {got + shed:,} events in {wall:.0f}s: {(got + shed) / wall:,.0f} events/s; "
          f"taken in {got / wall:,.0f}/s, shed {shed / wall:,.0f}/s (target: ingest >= 50,000/s)")
    print(f"into the feed's view: {viewed / wall:,.0f} events/s"
          + (f" passing the filter {filter_text!r}" if filter_text else "")
          + " (target: every event taken in)")
    print(f"key press answered: median {statistics.median(keys):.0f} ms, max {max(keys):.0f} ms "
          f"(target <= 100 ms)")
    print(f"redraws: {frames / wall:.1f} per second (target <= 30)")
    print(f"arrival to screen: p99 {p99:.0f} ms (target <= 100 ms)")
    after = [m for t, m in rss if full_at is not None and t >= full_at + 5]
    if after:
        print(f"resident memory once the ring was full: {min(after):.0f}..{max(after):.0f} MB "
              f"(start {rss[0][1]:.0f} MB)")
    else:
        print(f"resident memory: {rss[0][1]:.0f} → {rss[-1][1]:.0f} MB (ring never filled)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=50_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--batch", type=int, default=2046)
    ap.add_argument("--buffer", type=int, default=100_000)
    ap.add_argument("--filter", default="", help="a feed filter in force, e.g. status=5xx")
    a = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = mp.get_context("spawn").Process(target=serve, args=(port, a.rate, a.batch),
                                             daemon=True)
    server.start()
    time.sleep(1.5)
    try:
        asyncio.run(run(port, a.seconds, a.buffer, a.filter))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
