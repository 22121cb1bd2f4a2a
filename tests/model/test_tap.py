"""Tap steps joined into requests, and the match a subscription carries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tapkit import EMOJI, OUTSIDE, WEB, joined, steps

from meshtui.model.inventory import Workload
from meshtui.model.tap import (
    Direction,
    Endpoint,
    RequestTracker,
    ResponseEnd,
    StreamId,
    TapMatch,
)


def test_three_steps_make_one_request_with_every_figure() -> None:
    tracker = RequestTracker()
    req, rsp, end = steps(7, base=3, status=503, latency_us=1200, total_us=1500)
    first = tracker.observe(req)
    assert first.method == "GET" and first.status is None and first.success is None
    assert len(tracker) == 1
    assert tracker.observe(rsp) is first
    assert first.status == 503 and first.latency_us == 1200 and first.success is False
    assert tracker.observe(end) is first
    assert first.complete and first.total_us == 1500
    assert list(first.events()) == [req, rsp, end]
    assert str(first.stream) == "3:7"
    assert len(tracker) == 0 and tracker.completed == 1 and tracker.evicted == 0
    assert first.started_us == req.timestamp_us


def test_requests_interleave_and_are_told_apart_by_proxy_and_stream() -> None:
    tracker = RequestTracker()
    a = steps(1, path="/a")
    b = steps(2, path="/b")
    # Same stream id on another proxy (inbound at emoji) is another request.
    c = steps(1, path="/c", direction=Direction.INBOUND)
    order = [a[0], b[0], c[0], b[1], a[1], c[1], c[2], a[2], b[2]]
    got = [tracker.observe(e) for e in order]
    assert [r.path for r in got] == ["/a", "/b", "/c", "/b", "/a", "/c", "/c", "/a", "/b"]
    assert all(r.complete for r in got)
    assert tracker.completed == 3 and len(tracker) == 0


def test_the_proxy_is_named_by_the_side_it_sits_on() -> None:
    out_req = steps()[0]
    assert out_req.proxy == "emojivoto/web-1"
    in_req = steps(direction=Direction.INBOUND)[0]
    assert in_req.proxy == "emojivoto/emoji-1"
    unknown = steps(src=OUTSIDE, dst=Endpoint("127.0.0.1", 18080),
                    direction=Direction.INBOUND)[0]
    assert unknown.proxy == "127.0.0.1:18080"


def test_success_follows_linkerds_classification() -> None:
    def outcome(**kw: object) -> bool | None:
        return joined(**kw).success

    assert outcome(status=200) is True
    assert outcome(status=404) is True
    assert outcome(status=500) is False
    assert outcome(status=200, grpc_status=0) is True
    assert outcome(status=200, grpc_status=14) is False
    assert outcome(status=200, grpc_status=5) is True  # NotFound: answered as designed
    assert outcome(status=200, grpc_status=4) is False  # DeadlineExceeded
    assert outcome(status=200, reset_code=2) is False


def test_a_request_caught_midway_is_partial_but_still_a_record() -> None:
    tracker = RequestTracker()
    _, rsp, end = steps(5)
    r = tracker.observe(rsp)
    assert r.init is None and r.method is None and r.path is None and r.status == 200
    assert tracker.observe(end) is r and r.complete


def test_an_end_alone_neither_stays_nor_evicts() -> None:
    tracker = RequestTracker(capacity=1)
    kept = tracker.observe(steps(1)[0])
    lone = tracker.observe(steps(2)[2])
    assert lone.complete and lone.success is None and lone.status is None
    assert len(tracker) == 1 and tracker.evicted == 0
    assert tracker.observe(steps(1)[1]) is kept


def test_full_tracker_lets_the_oldest_go_and_counts_it() -> None:
    tracker = RequestTracker(capacity=3)
    first = [tracker.observe(steps(i)[0]) for i in range(5)]
    assert len(tracker) == 3 and tracker.evicted == 2
    # The evicted request's response starts a new, partial record.
    again = tracker.observe(steps(0)[1])
    assert again is not first[0] and again.init is None
    assert tracker.observe(steps(4)[1]) is first[4]
    assert len(tracker) == 3


def test_a_stream_id_coming_back_starts_a_new_request() -> None:
    tracker = RequestTracker()
    old = tracker.observe(steps(9, path="/old")[0])
    new = tracker.observe(steps(9, path="/new")[0])  # the proxy restarted
    assert new is not old and new.path == "/new" and tracker.evicted == 1


def test_tracker_refuses_a_useless_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RequestTracker(capacity=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=200),
       st.integers(1, 12))
def test_tracker_never_holds_more_than_its_capacity(ops, capacity) -> None:
    tracker = RequestTracker(capacity=capacity)
    cache = {i: steps(i) for i in range(31)}
    ends = 0
    for stream, step in ops:
        r = tracker.observe(cache[stream][step])
        assert r.stream == StreamId(1, stream)
        assert len(tracker) <= capacity
        ends += step == 2
    assert tracker.completed == ends


def test_an_empty_match_takes_everything() -> None:
    assert not TapMatch()
    assert TapMatch().matches(steps()[0])
    assert TapMatch().matches(RequestTracker().observe(steps()[1]))


@pytest.mark.parametrize(("match", "expected"), [
    (TapMatch(method="get"), True),
    (TapMatch(method="POST"), False),
    (TapMatch(path_prefix="/api"), True),
    (TapMatch(path_prefix="/API"), False),
    (TapMatch(path_prefix="/api/list/more"), False),
    (TapMatch(authority="EMOJI-svc.emojivoto:8080"), True),
    (TapMatch(authority="emoji-svc"), False),
    (TapMatch(direction=Direction.OUTBOUND), True),
    (TapMatch(direction=Direction.INBOUND), False),
    (TapMatch(source=Workload(deployment="web")), True),
    (TapMatch(source=Workload("emojivoto", "web", "web-2")), False),
    (TapMatch(destination=Workload(namespace="emojivoto")), True),
    (TapMatch(destination=Workload(pod="web-1")), False),
    (TapMatch(method="GET", path_prefix="/api", destination=Workload(deployment="emoji")), True),
])
def test_match_fields(match: TapMatch, expected: bool) -> None:
    req = steps()[0]
    assert match.matches(req) is expected
    r = RequestTracker().observe(req)
    assert match.matches(r) is expected


def test_a_match_cannot_pass_a_request_whose_start_was_not_seen() -> None:
    r = RequestTracker().observe(steps()[1])
    assert not TapMatch(method="GET").matches(r)


def test_endpoints_print_and_label() -> None:
    assert str(WEB) == "10.0.0.1:41000"
    assert str(Endpoint("::1", 80)) == "[::1]:80"
    assert WEB.label == "deploy/web"
    assert Endpoint("10.1.1.1", 1, Workload("ns", "", "bare")).label == "po/bare"
    assert OUTSIDE.label == "192.0.2.7"
    assert EMOJI.workload.namespace == "emojivoto"


def test_directions_read_and_print() -> None:
    assert Direction.parse("IN") is Direction.INBOUND
    assert Direction.parse("outbound") is Direction.OUTBOUND
    assert Direction.INBOUND.short == "in" and Direction.UNKNOWN.short == "?"
    with pytest.raises(ValueError, match="in or out"):
        Direction.parse("sideways")


def test_steps_are_immutable() -> None:
    end = steps()[2]
    assert isinstance(end, ResponseEnd)
    with pytest.raises(AttributeError):
        end.response_bytes = 0  # type: ignore[misc]
