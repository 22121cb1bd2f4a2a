"""The sieve plain tap output filters steps with."""

from __future__ import annotations

from tapkit import steps

from meshtui.model.feed_filter import FeedFilter
from meshtui.model.tap_sieve import TapSieve


def test_request_fields_decide_at_the_first_step() -> None:
    sieve = TapSieve(FeedFilter.parse("path~^/api"))
    a, b = steps(1, path="/api/x"), steps(2, path="/web")
    assert sieve.feed([a[0], b[0]]) == [a[0]]  # passed at once, not held
    assert sieve.feed([b[1], a[1], a[2], b[2]]) == [a[1], a[2]]


def test_response_fields_hold_a_request_until_its_end() -> None:
    sieve = TapSieve(FeedFilter.parse("status>=500"))
    ok, bad = steps(1, status=200), steps(2, status=503)
    assert sieve.feed([ok[0], bad[0], ok[1], bad[1]]) == []
    assert sieve.feed([bad[2], ok[2]]) == list(bad)


def test_requests_let_go_unfinished_are_counted_and_forgotten() -> None:
    sieve = TapSieve(FeedFilter.parse("5xx"), capacity=2)
    starts = [steps(i, status=500)[0] for i in range(5)]
    assert sieve.feed(starts) == []
    assert sieve.dropped == 3
    assert sieve.feed(list(steps(4, status=500)[1:])) == list(steps(4, status=500))


def test_no_filter_passes_every_step() -> None:
    s = steps()
    assert TapSieve(FeedFilter()).feed(list(s)) == list(s)
