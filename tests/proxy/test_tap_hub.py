"""Tap fan-out: who sees which request, in what shape, and what a slow reader loses."""

from __future__ import annotations

import asyncio

import pytest

from meshtui.model.inventory import Workload
from meshtui.proxy.tap_hub import REDACTED, TapHub, TapLimitError
from meshtui.proxy.telemetry import Direction, Identity, Telemetry
from meshtui.v1 import common_pb2, proxy_pb2

IDENT = Identity("emojivoto", "web", "web-0", "10.0.0.5")
PODS = {
    "10.0.0.7": Workload("emojivoto", "emoji", "emoji-0"),
    "10.0.0.8": Workload("emojivoto", "vote-bot", "vote-bot-0"),
}


class FakeClock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def make(clock: FakeClock | None = None, **kw: object) -> Telemetry:
    return Telemetry(IDENT, lambda ip, port: PODS.get(ip), clock or FakeClock(),  # type: ignore[arg-type]
                     wall=lambda: 1_700_000_000.0, **kw)


def call(tel: Telemetry, *, method: str = "GET", path: str = "/api/list",
         authority: str = "emoji-svc:8080", direction: Direction = Direction.OUTBOUND,
         src: tuple[str, int] = ("10.0.0.5", 40000), dst: tuple[str, int] = ("10.0.0.7", 8080),
         conn_id: int = 1, status: int | None = 200,
         req_headers: list[tuple[bytes, bytes]] | None = None,
         resp_headers: list[tuple[bytes, bytes]] | None = None,
         trailers: list[tuple[bytes, bytes]] | None = None,
         clock: FakeClock | None = None) -> None:
    obs = tel.request(direction, src, dst, conn_id, method, "http", authority, path,
                      req_headers or [(b"host", authority.encode())])
    if clock:
        clock.t += 0.002
    if status is None:
        obs.reset(7)
        return
    obs.response_start(status, resp_headers or [(b"content-length", b"3")])
    if clock:
        clock.t += 0.001
    obs.response_end(3, trailers)


def drain(tel: Telemetry, sub: object) -> list[common_pb2.TapEvent]:
    out: list[common_pb2.TapEvent] = []
    while True:
        batch = tel.hub.take_batch(sub)  # type: ignore[arg-type]
        if not batch.events:
            return out
        out.extend(batch.events)


def kinds(events: list[common_pb2.TapEvent]) -> list[str]:
    return [e.WhichOneof("event") or "" for e in events]


def test_each_request_yields_its_three_events_in_order() -> None:
    clock = FakeClock()
    tel = make(clock)
    sub = tel.hub.subscribe()
    call(tel, clock=clock, trailers=[(b"grpc-status", b"0")])
    ev = drain(tel, sub)
    assert kinds(ev) == ["request_init", "response_init", "response_end"]
    req, init, end = ev
    assert (req.request_init.method, req.request_init.authority, req.request_init.path) == (
        "GET", "emoji-svc:8080", "/api/list")
    assert req.proxy_direction == Direction.OUTBOUND and not req.tls
    assert (req.source.ip, req.source.port, req.source.workload.pod) == ("10.0.0.5", 40000,
                                                                         "web-0")
    assert (req.destination.ip, req.destination.port, req.destination.workload.deployment) == (
        "10.0.0.7", 8080, "emoji")
    assert req.timestamp_us == 1_700_000_000_000_000
    assert init.response_init.http_status == 200
    assert init.response_init.since_request_init_us == 2000
    assert init.timestamp_us == req.timestamp_us + 2000
    assert end.response_end.since_request_init_us == 3000
    assert end.response_end.since_response_init_us == 1000
    assert end.response_end.response_bytes == 3
    assert end.response_end.WhichOneof("eos") == "grpc_status_code"
    assert end.response_end.grpc_status_code == 0
    assert {e.id.base for e in ev} == {1}


def test_stream_ids_count_requests_per_connection() -> None:
    tel = make()
    sub = tel.hub.subscribe()
    for conn in (5, 5, 9, 5):
        call(tel, conn_id=conn)
    ids = [(e.id.base, e.id.stream) for e in drain(tel, sub) if e.HasField("request_init")]
    assert ids == [(5, 1), (5, 2), (9, 1), (5, 3)]


def test_inbound_source_is_resolved_and_destination_is_own_pod() -> None:
    tel = make()
    sub = tel.hub.subscribe()
    call(tel, direction=Direction.INBOUND, src=("10.0.0.8", 51000), dst=("127.0.0.1", 8080))
    e = drain(tel, sub)[0]
    assert e.source.workload.deployment == "vote-bot"
    assert e.destination.workload.pod == "web-0"


def test_reset_before_response_gives_request_init_and_a_reset_end() -> None:
    tel = make()
    sub = tel.hub.subscribe()
    call(tel, status=None)
    ev = drain(tel, sub)
    assert kinds(ev) == ["request_init", "response_end"]
    assert ev[1].response_end.reset_error_code == 7


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (common_pb2.TapMatch(), 5),
        (common_pb2.TapMatch(method="post"), 1),
        (common_pb2.TapMatch(path_prefix="/api/"), 4),
        (common_pb2.TapMatch(authority="VOTE-SVC:8080"), 1),
        (common_pb2.TapMatch(direction=common_pb2.INBOUND), 1),
        (common_pb2.TapMatch(destination=common_pb2.Workload(deployment="emoji")), 3),
        (common_pb2.TapMatch(destination=common_pb2.Workload(namespace="emojivoto",
                                                             pod="emoji-0")), 3),
        (common_pb2.TapMatch(source=common_pb2.Workload(deployment="vote-bot")), 1),
        (common_pb2.TapMatch(method="GET", path_prefix="/api/vote"), 1),
    ],
)
def test_filters(match: common_pb2.TapMatch, expected: int) -> None:
    tel = make()
    sub = tel.hub.subscribe(match)
    call(tel)
    call(tel, path="/api/list/2")
    call(tel, method="POST", path="/api/vote", authority="vote-svc:8080", dst=("10.0.0.9", 80))
    call(tel, path="/healthz")
    call(tel, direction=Direction.INBOUND, src=("10.0.0.8", 1), dst=("127.0.0.1", 8080),
         path="/api/vote")
    ev = drain(tel, sub)
    assert len(ev) == 3 * expected
    assert kinds(ev).count("request_init") == expected


def test_rate_limit_counts_requests_not_events() -> None:
    clock = FakeClock()
    tel = make(clock)
    sub = tel.hub.subscribe(max_rps=5)
    for _ in range(20):
        call(tel)
    ev = drain(tel, sub)
    assert len(ev) == 15  # the one-second burst: five whole requests
    assert kinds(ev) == ["request_init", "response_init", "response_end"] * 5
    clock.t += 0.5  # two and a half more tokens
    for _ in range(20):
        call(tel)
    assert len(drain(tel, sub)) == 6
    assert sub.limited == 33  # 15 + 18
    assert sub.dropped == 0  # the limit is not a loss


def test_secret_headers_are_redacted_by_default() -> None:
    secrets = [(b"Authorization", b"Bearer s3cret"), (b"cookie", b"sid=1"),
               (b"Proxy-Authorization", b"Basic x"), (b"x-plain", b"visible")]
    for show, expect in ((False, REDACTED), (True, None)):
        tel = make(show_secrets=show)
        sub = tel.hub.subscribe()
        call(tel, req_headers=secrets, resp_headers=[(b"Set-Cookie", b"sid=2; HttpOnly")])
        req, resp, _ = drain(tel, sub)
        got = {h.name.lower(): h.value for h in req.request_init.headers}
        set_cookie = resp.response_init.headers[0].value
        assert got["x-plain"] == b"visible"
        if expect is None:
            assert got["authorization"] == b"Bearer s3cret" and set_cookie == b"sid=2; HttpOnly"
        else:
            assert {got["authorization"], got["cookie"], got["proxy-authorization"],
                    set_cookie} == {expect}


def test_a_full_queue_drops_whole_requests_and_counts_every_lost_event() -> None:
    tel = make(hub=TapHub(FakeClock(), queue_capacity=30, max_batch=7))
    sub = tel.hub.subscribe()
    for _ in range(100):
        call(tel)
    assert len(sub.queue) == 30
    assert sub.dropped == 300 - 30
    batches = []
    while True:
        b = tel.hub.take_batch(sub)
        if not b.events and not b.dropped:
            break
        batches.append(b)
    assert [len(b.events) for b in batches] == [7, 7, 7, 7, 2]
    assert [b.dropped for b in batches] == [270, 0, 0, 0, 0]
    ev = [e for b in batches for e in b.events]
    assert kinds(ev) == ["request_init", "response_init", "response_end"] * 10
    # Room again: new requests are delivered, and later losses are reported afresh.
    call(tel)
    b = tel.hub.take_batch(sub)
    assert (len(b.events), b.dropped) == (3, 0)


def test_a_subscriber_that_reads_nothing_keeps_a_bounded_queue_and_others_unaffected() -> None:
    tel = make(hub=TapHub(FakeClock(), queue_capacity=300))
    stuck = tel.hub.subscribe()
    for _ in range(10_000):
        call(tel)
    assert len(stuck.queue) == 300
    assert stuck.dropped == 30_000 - 300
    assert tel.hub.dropped_total == stuck.dropped
    # Recording went on untouched by the loss.
    (series,) = tel.scrape().responses
    assert series.count == 10_000
    tel.hub.unsubscribe(stuck)
    assert tel.hub.dropped_total == 30_000 - 300


async def test_batches_stream_wakes_on_events_and_ends_on_unsubscribe() -> None:
    tel = make(hub=TapHub(FakeClock(), max_batch=1000, linger=0.01))
    sub = tel.hub.subscribe()
    got: list[proxy_pb2.TapBatch] = []

    async def read() -> None:
        async for batch in tel.hub.batches(sub):
            got.append(batch)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.02)
    assert got == []  # nothing to say, nothing sent
    for _ in range(50):
        call(tel)
    await asyncio.sleep(0.05)
    assert sum(len(b.events) for b in got) == 150
    assert len(got) == 1  # the linger gathered them into one message
    tel.hub.unsubscribe(sub)
    await asyncio.wait_for(task, 1)
    assert tel.hub.subscribers == ()


def test_subscriber_limit_and_bad_rate() -> None:
    hub = TapHub(FakeClock(), max_subscribers=2)
    hub.subscribe()
    hub.subscribe()
    with pytest.raises(TapLimitError):
        hub.subscribe()
    with pytest.raises(ValueError):
        TapHub(FakeClock()).subscribe(max_rps=-1)
    with pytest.raises(ValueError):
        TapHub(FakeClock()).subscribe(max_rps=float("nan"))


def test_nobody_tapping_builds_nothing() -> None:
    tel = make()
    obs = tel.request(Direction.OUTBOUND, ("a", 1), ("10.0.0.7", 8080), 1, "GET", "http", "x",
                      "/", [])
    assert obs._tap is None
    sub = tel.hub.subscribe(common_pb2.TapMatch(method="DELETE"))
    obs = tel.request(Direction.OUTBOUND, ("a", 1), ("10.0.0.7", 8080), 1, "GET", "http", "x",
                      "/", [])
    assert obs._tap is None and not sub.queue


async def test_building_batches_keeps_to_its_cpu_share_and_the_rest_is_counted_lost() -> None:
    """However fast a stream is read, building its batches takes at most the hub's
    share of the clock; the events that could not wait are dropped and counted."""
    import time

    tel = make(hub=TapHub(FakeClock(), queue_capacity=300, linger=0, cpu_share=0.05))
    sub = tel.hub.subscribe()
    built = 0

    def slow_encode(batch: proxy_pb2.TapBatch) -> proxy_pb2.TapBatch:
        nonlocal built
        built += 1
        end = time.perf_counter() + 0.005  # 5 ms of CPU per batch
        while time.perf_counter() < end:
            pass
        return batch

    seen = lost = 0

    async def read() -> None:
        nonlocal seen, lost
        async for batch in tel.hub.batches(sub, slow_encode):
            seen += len(batch.events)
            lost += batch.dropped

    task = asyncio.create_task(read())
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        for _ in range(20):
            call(tel)
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - t0
    # 5 % of 0.5 s is 25 ms: five 5-ms builds, plus the starting burst.
    assert built <= 0.05 * elapsed / 0.005 + 4, built
    assert tel.hub.budget_waits > 0.2
    assert sub.dropped > 0
    tel.hub.unsubscribe(sub)
    await asyncio.wait_for(task, 2)
    # Every event the traffic made was delivered, counted lost or is still queued;
    # the batches reported the losses as they went.
    (series,) = tel.scrape().responses
    assert seen + sub.dropped + len(sub.queue) == 3 * series.count
    assert 0 < lost <= sub.dropped


def test_full_queues_count_every_lost_event_and_a_workload_filter_is_still_checked() -> None:
    import meshtui.proxy.telemetry as telemetry_module

    tel = make(hub=TapHub(FakeClock(), queue_capacity=30))
    everything = tel.hub.subscribe()
    api = tel.hub.subscribe(common_pb2.TapMatch(path_prefix="/api"))
    for _ in range(10):  # 10 requests, 30 events: both queues are full
        call(tel)
    assert len(everything.queue) == len(api.queue) == 30
    assert tel.hub.all_full()
    built = []
    real = telemetry_module.TapRequest
    telemetry_module.TapRequest = lambda *a: built.append(a) or real(*a)  # type: ignore[misc]
    try:
        for _ in range(100):
            call(tel, path="/api/x")
        for _ in range(50):
            call(tel, path="/web")
        for _ in range(5):
            call(tel, status=None)  # reset before any response: two events each
        assert built == []  # nobody had room: no tap object was made
        assert everything.dropped == 150 * 3 + 5 * 2
        assert api.dropped == 100 * 3 + 5 * 2
        # A subscriber filtered by workload cannot be decided without the workloads:
        # the full path runs, and still loses the request (and counts it) only if it
        # matches.
        emoji = tel.hub.subscribe(common_pb2.TapMatch(
            destination=common_pb2.Workload(deployment="emoji")))
        emoji.queue.extend([(0,)] * 30)
        assert not tel.hub.all_full()
        call(tel, path="/api/x")
        call(tel, path="/api/x", dst=("10.9.9.9", 80))  # not emoji's: not its loss
        assert emoji.dropped == 3
        assert everything.dropped == 150 * 3 + 5 * 2 + 2 * 3
    finally:
        telemetry_module.TapRequest = real  # type: ignore[misc]


def test_a_filter_cannot_find_out_a_redacted_value_by_what_it_lets_through() -> None:
    """Paths and authorities are matched as tap shows them: a prefix that reaches into a
    secret query value, or an authority naming a user, matches nothing, so no one can
    guess a token one character at a time from which requests appear."""
    tel = make()
    guess = tel.hub.subscribe(common_pb2.TapMatch(path_prefix="/login?token=s3"))
    plain = tel.hub.subscribe(common_pb2.TapMatch(path_prefix="/login"))
    user = tel.hub.subscribe(common_pb2.TapMatch(authority="ann:pw@app:80"))
    call(tel, path="/login?token=s3cret", authority="ann:pw@app:80")
    call(tel, path="/login?token=abc")
    assert drain(tel, guess) == [] and drain(tel, user) == []
    paths = [e.request_init.path for e in drain(tel, plain) if e.HasField("request_init")]
    assert paths == ["/login?token=<redacted>"] * 2
    # Shown in full (--show-secrets), a proxy matches what it shows.
    shown = make(show_secrets=True)
    sub = shown.hub.subscribe(common_pb2.TapMatch(path_prefix="/login?token=s3"))
    call(shown, path="/login?token=s3cret")
    assert len(drain(shown, sub)) == 3


def test_bodies_of_requests_under_way_are_held_to_one_budget() -> None:
    """Two thousand slow uploads at once, each asked for 64 KiB each way: past the
    in-flight budget the later ones are tapped without bodies, and every byte of the
    budget comes back as they end."""
    from meshtui.proxy.tap_hub import BODY_INFLIGHT_BYTES

    tel = make()
    sub = tel.hub.subscribe(capture_body=65536)
    under_way = []
    for i in range(2000):  # the subscriber keeps up: its queue never stops a request
        under_way.append(tel.request(Direction.OUTBOUND, ("10.0.0.5", 40000),
                                     ("10.0.0.7", 8080), i, "POST", "http", "emoji-svc:8080",
                                     "/up", []))
        drain(tel, sub)
    capturing = [o for o in under_way if o.cap]
    assert len(capturing) == BODY_INFLIGHT_BYTES // (2 * 65536)
    assert tel.hub.capturing_bytes <= BODY_INFLIGHT_BYTES
    for o in under_way:
        if o.cap:
            o.capture_request(b"x" * 1000)
        o.response_start(200, [])
        o.response_end(0)
        drain(tel, sub)
    assert (tel.hub.capturing, tel.hub.capturing_bytes) == (0, 0)
    after = tel.request(Direction.OUTBOUND, ("10.0.0.5", 40000), ("10.0.0.7", 8080), 1,
                        "POST", "http", "emoji-svc:8080", "/up", [])
    assert after.cap == 65536  # room again


def test_a_subscriber_that_reads_nothing_holds_at_most_its_bodies_budget() -> None:
    """Requests admitted while earlier ones were still under way all end together:
    their bodies are counted as they are queued, and past the subscriber's budget an
    end is queued without them (the queue had held up to three times the budget)."""
    from meshtui.proxy.tap_hub import BODY_QUEUE_BYTES

    tel = make()
    sub = tel.hub.subscribe(capture_body=65536)
    body = b"y" * 65536
    # 200 at once (the queue has room for all their events: it admits by events, and
    # only their first is queued when they are admitted), 128 KiB of bodies each.
    under_way = [tel.request(Direction.OUTBOUND, ("10.0.0.5", 40000), ("10.0.0.7", 8080),
                             i, "POST", "http", "emoji-svc:8080", "/up", [])
                 for i in range(200)]
    started = [o for o in under_way if o.cap]
    for o in started:
        o.capture_request(body)
        o.response_start(200, [])
        o.capture_response(body)
        o.response_end(len(body))
    held = sum(len(b"".join(ev[-1][0])) + len(b"".join(ev[-1][2]))
               for ev in sub.queue if ev[0] == 2 and ev[-1] is not None)
    assert held == sub.body_bytes <= BODY_QUEUE_BYTES
    assert held > BODY_QUEUE_BYTES - 2 * 65536  # filled, not refused outright
    ends = [e.response_end for e in drain(tel, sub) if e.HasField("response_end")]
    with_bodies = [e for e in ends if e.HasField("request_body")]
    assert len(ends) == len(started) and 0 < len(with_bodies) < len(ends)
    assert all(e.request_body.data == body for e in with_bodies)
    assert sub.body_bytes == 0  # all given back as the batches went out


def test_a_subscriber_without_bodies_keeps_none_of_anothers_alive() -> None:
    """One tap captures bodies, another does not: the second's queue holds the ends
    without them, so a stalled plain tap keeps no body memory."""
    tel = make()
    capturing = tel.hub.subscribe(capture_body=65536)
    plain = tel.hub.subscribe()
    for i in range(20):
        o = tel.request(Direction.OUTBOUND, ("10.0.0.5", 40000), ("10.0.0.7", 8080), i,
                        "POST", "http", "emoji-svc:8080", "/up", [])
        o.capture_request(b"z" * 65536)
        o.response_start(200, [])
        o.response_end(0)
    assert all(ev[-1] is None for ev in plain.queue if ev[0] == 2)
    assert sum(ev[-1] is not None for ev in capturing.queue if ev[0] == 2) == 20
