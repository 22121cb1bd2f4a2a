"""Tap events kept as wire events: joined like model events, converted only when looked at."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshtui.client import tap_wire
from meshtui.client.budget import Budget
from meshtui.client.convert import tap_event
from meshtui.client.tap_wire import StepTracker, WireEvents
from meshtui.model.feed_filter import FeedFilter
from meshtui.model.tap import RequestInit, RequestTracker
from meshtui.tui.feed import Ring
from meshtui.tui.tap_screen import render_item
from meshtui.v1 import common_pb2

WEB = common_pb2.Endpoint(ip="10.0.0.1", port=41000, workload=common_pb2.Workload(
    namespace="emojivoto", deployment="web", pod="web-1"))
EMOJI = common_pb2.Endpoint(ip="10.0.0.2", port=8080, workload=common_pb2.Workload(
    namespace="emojivoto", deployment="emoji", pod="emoji-1"))
VOTING = common_pb2.Endpoint(ip="10.0.0.3", port=8080, workload=common_pb2.Workload(
    namespace="emojivoto", deployment="voting", pod="voting-1"))
KINDS = ("request_init", "response_init", "response_end")


def wire(step: int, stream: int = 1, *, base: int = 1, inbound: bool = False,
         dst: common_pb2.Endpoint = EMOJI, path: str = "/api/list",
         status: int = 200) -> common_pb2.TapEvent:
    """Step 0, 1 or 2 (request, response, end) of one request, as the controller sends it."""
    ev = common_pb2.TapEvent(
        source=WEB, destination=dst, id=common_pb2.StreamId(base=base, stream=stream),
        proxy_direction=common_pb2.INBOUND if inbound else common_pb2.OUTBOUND,
        timestamp_us=1_700_000_000_000_000 + step)
    if step == 0:
        ev.request_init.CopyFrom(common_pb2.RequestInit(
            method="GET", scheme="http", authority="emoji-svc:8080", path=path,
            headers=[common_pb2.Header(name="user-agent", value=b"\x1b[31mbot")]))
    elif step == 1:
        ev.response_init.CopyFrom(common_pb2.ResponseInit(http_status=status,
                                                          since_request_init_us=1200))
    else:
        ev.response_end.CopyFrom(common_pb2.ResponseEnd(since_request_init_us=1500,
                                                        since_response_init_us=300,
                                                        response_bytes=512))
    return ev


def test_steps_of_one_request_share_a_record_and_read_as_the_model_does() -> None:
    tracker = StepTracker()
    a = [wire(i, 1, path="/a") for i in range(3)]
    b = [wire(i, 2, path="/b", status=503) for i in range(3)]
    recs, slots = tracker.join_wire([a[0], b[0], b[1], a[1], a[2], b[2]])
    assert list(slots) == [0, 0, 1, 1, 2, 2]
    assert recs[0] is recs[3] is recs[4] and recs[1] is recs[2] is recs[5]
    assert recs[0].status == 200 and recs[1].status == 503
    req = recs[1].request()
    assert (req.path, req.status, req.latency_us, req.total_us) == ("/b", 503, 1200, 1500)
    assert req.init == tap_event(b[0]) and req.end == tap_event(b[2])
    assert tracker.completed == 2 and len(tracker) == 0


def test_the_same_stream_id_at_another_proxy_is_another_request() -> None:
    tracker = StepTracker()
    out = wire(0, 1)
    inbound_emoji = wire(0, 1, inbound=True)
    inbound_voting = wire(0, 1, inbound=True, dst=VOTING)
    recs, _ = tracker.join_wire([out, inbound_emoji, inbound_voting])
    assert len({id(r) for r in recs}) == 3 and len(tracker) == 3


def test_a_step_seen_twice_starts_a_new_record_and_a_full_tracker_lets_the_oldest_go() -> None:
    tracker = StepTracker(capacity=2)
    first = tracker.join_wire([wire(0, 1)])[0][0]
    again = tracker.join_wire([wire(0, 1)])[0][0]  # its proxy restarted
    assert again is not first and tracker.evicted == 1
    tracker.join_wire([wire(0, 2), wire(0, 3)])  # a third open request: 1 goes
    assert len(tracker) == 2 and tracker.evicted == 2
    late = tracker.join_wire([wire(1, 1)])[0][0]  # its response starts a partial record
    assert late.request().init is None and late.status == 200


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 2), st.booleans()),
                max_size=60), st.integers(1, 5))
def test_wire_joins_match_the_models_tracker(steps: list[tuple[int, int, bool]],
                                             capacity: int) -> None:
    events = [wire(step, stream, inbound=inbound) for stream, step, inbound in steps]
    lazy = StepTracker(capacity)
    model = RequestTracker(capacity)
    got = [rec.request() for rec in lazy.join_wire(events)[0]]
    want = []
    for ev in events:
        converted = tap_event(ev)
        assert converted is not None
        want.append(model.observe(converted))
    # The same grouping, the same records and the same counts.
    assert [list(r.events()) for r in got] == [list(r.events()) for r in want]
    groups: dict[int, int] = {}
    for g, w in zip(got, want, strict=True):
        assert groups.setdefault(id(w), id(g)) == id(g)
    assert (lazy.evicted, lazy.completed, len(lazy)) == (model.evicted, model.completed,
                                                          len(model))


def test_a_step_is_converted_only_when_looked_at(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counting(ev: common_pb2.TapEvent) -> object:
        calls.append(ev)
        return tap_event(ev)

    monkeypatch.setattr(tap_wire, "tap_event", counting)
    recs, _ = StepTracker().join_wire([wire(i % 3, i // 3) for i in range(3000)])
    assert len(recs) == 3000 and calls == []
    rec = recs[4]
    assert rec.status == 200 and calls == []  # read straight from the wire
    assert rec.request().path == "/api/list" and len(calls) == 3
    rec.request()
    assert len(calls) == 3  # kept until another step arrives


def test_untrusted_text_from_the_wire_is_shown_literally() -> None:
    hostile = "/[bold]x\x1b[2J"
    [rec], [slot] = StepTracker().join_wire([wire(0, path=hostile)])
    plain = render_item(rec, slot).plain
    assert "\x1b" not in plain and "/[bold]x\\x1b[2J" in plain
    init = rec.request().init
    assert isinstance(init, RequestInit)
    assert init.headers == (("user-agent", "\\x1b[31mbot"),)


def test_wire_events_read_as_model_events_charge_the_budget() -> None:
    events = [wire(i % 3, i // 3) for i in range(300)]
    budget = Budget(0.5, period_s=60)
    lazy = WireEvents(events, budget)
    assert len(lazy) == 300
    assert list(lazy) == [tap_event(e) for e in events]
    assert lazy[1] == tap_event(events[1]) and lazy[3:5] == [tap_event(e) for e in events[3:5]]
    spent = budget._spent
    assert spent > 0
    lazy.spend(30.0)  # a reader that converted nothing still pays for its time
    assert not budget.allows()


def test_ring_extend_keeps_what_appending_one_by_one_keeps() -> None:
    for capacity in (1, 5, 7):
        for sizes in ([3, 3, 3], [12], [0, 6, 1, 9], [5, 5]):
            one, many = Ring[int](capacity), Ring[int](capacity)
            n = 0
            for size in sizes:
                batch = list(range(n, n + size))
                n += size
                for x in batch:
                    one.append(x)
                seqs = many.extend(batch)
                assert seqs.stop == n and len(seqs) == min(size, capacity)
            assert [one.get(s) for s in one.seqs()] == [many.get(s) for s in many.seqs()]
            assert (one.next_seq, one.dropped, len(one)) == (many.next_seq, many.dropped,
                                                             len(many))



@pytest.mark.parametrize("text", [
    "GET", "status=5xx", "status>=300", "503", "path~/b", "path=/a", "authority~EMOJI",
    "latency>1ms", "latency<1ms", "dst=deploy/emoji", "src=web", "src=10.0.0.1",
    "dir=out", "dir=in", "method!=GET", "status!=200 path~/",
])
def test_a_filter_reads_a_wire_record_as_it_reads_the_converted_request(text: str) -> None:
    flt = FeedFilter.parse(text)
    events = [wire(i, 1, path="/a") for i in range(3)] + [
        wire(i, 2, path="/b", status=503, inbound=True) for i in range(2)] + [wire(1, 3)]
    for rec in StepTracker().join_wire(events)[0]:
        assert flt.matches(rec) == flt.matches(rec.request())


def test_requests_whose_end_was_lost_do_not_outlive_the_horizon() -> None:
    # Each wire event keeps its whole batch in memory: a request whose end never
    # comes must be let go once the feed's ring has moved past it.
    tracker = StepTracker(capacity=50_000, horizon=300)
    for batch in range(20):
        events = [wire(step, batch * 100 + n) for n in range(100) for step in (0, 1)]
        tracker.join_wire(events)
        assert len(tracker) <= 300
    assert tracker.evicted >= 2000 - 300 and tracker.completed == 0
    # Within the horizon, late steps still find their request.
    rec = tracker.join_wire([wire(2, 1999)])[0][0]
    assert rec.request().init is not None and tracker.completed == 1


def test_ring_items_read_consecutive_seqs_across_the_wrap() -> None:
    ring = Ring[int](5)
    ring.extend(list(range(8)))  # holds 3..7, wrapped
    assert ring.items(range(3, 8)) == [3, 4, 5, 6, 7]
    assert ring.items(range(4, 6)) == [4, 5] and ring.items(range(6, 6)) == []
    with pytest.raises(IndexError):
        ring.items(range(2, 5))


def test_ring_tags_travel_with_their_items_across_the_wrap() -> None:
    ring = Ring[str](4)
    ring.extend(["a", "b", "c"], bytes([0, 1, 2]))
    ring.extend(["d", "e", "f"], bytes([2, 1, 0]))  # holds c..f, wrapped
    assert [(ring.get(s), ring.tag(s)) for s in ring.seqs()] == [
        ("c", 2), ("d", 2), ("e", 1), ("f", 0)]
    with pytest.raises(ValueError):
        ring.extend(["g"], bytes([1, 2]))


def test_the_budget_does_not_charge_a_garbage_collection_to_intake() -> None:
    import gc
    import time

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    garbage = [Node() for _ in range(200_000)]
    del garbage
    budget_start, cpu_start = Budget.clock(), time.thread_time()
    gc.collect()
    collected = time.thread_time() - cpu_start
    charged = Budget.clock() - budget_start
    assert collected > 0.005  # the collection took real time...
    assert charged < collected / 5  # ...that intake is not charged for


def test_header_values_read_from_wire_steps_as_the_converted_events_hold_them() -> None:
    req = wire(0)
    req.request_init.headers.extend([
        common_pb2.Header(name="User-Agent", value=b"curl/8.5"),
        common_pb2.Header(name="x-\xe2\x80\xaeid", value=b"\xff\x00"),  # UTF-8 as Latin-1
        common_pb2.Header(name="accept", value=b"*/*")])
    recs, _ = StepTracker().join_wire([req, wire(1), wire(2)])
    model = RequestTracker()
    for ev in (req, wire(1), wire(2)):
        done = model.observe(tap_event(ev))  # type: ignore[arg-type]
    headers = done.init.headers if done.init else ()
    for name in ("user-agent", "x-\\u202eid", "accept", "missing"):
        want = [v for n, v in headers if n.lower() == name]
        assert recs[0].header_values(name) == want
    assert recs[0].header_values("user-agent") == ["\\x1b[31mbot", "curl/8.5"]


def test_the_limit_proxies_capture_bodies_at_is_read_from_wire_and_model_events() -> None:
    from meshtui.client.tap_wire import WireEvents, body_limit
    from meshtui.v1 import common_pb2

    init = common_pb2.TapEvent()
    init.request_init.method = "POST"
    end = common_pb2.TapEvent()
    end.response_end.request_body.limit = 512
    assert body_limit(WireEvents([init, end])) == 512
    assert body_limit(WireEvents([init])) is None
    assert body_limit(list(WireEvents([init, end]))) == 512  # as model events
