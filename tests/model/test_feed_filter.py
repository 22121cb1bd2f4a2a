"""The filter typed after `/` in the tap feed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tapkit import OUTSIDE, joined, steps

from meshtui.model.feed_filter import FeedFilter, FilterError
from meshtui.model.inventory import Workload
from meshtui.model.tap import Direction, Endpoint, RequestTracker


def passes(text: str, **kw: object) -> bool:
    return FeedFilter.parse(text).matches(joined(**kw))


def test_empty_filter_passes_everything() -> None:
    f = FeedFilter.parse("   ")
    assert not f and str(f) == ""
    assert f.matches(joined(upto=1))


@pytest.mark.parametrize(("text", "kw", "expected"), [
    ("GET", {}, True),
    ("POST", {}, False),
    ("get", {"path": "/budget"}, True),  # lower case is a word of the path
    ("method=post,get", {}, True),
    ("method!=GET", {}, False),
    ("status=200", {}, True),
    ("status=500", {"status": 500}, True),
    ("status=5xx", {"status": 503}, True),
    ("5xx", {"status": 503}, True),
    ("5XX", {"status": 404}, False),
    ("404", {"status": 404}, True),
    ("status=4xx,5xx", {"status": 404}, True),
    ("status!=2xx", {"status": 200}, False),
    ("status>=400", {"status": 404}, True),
    ("status<400", {"status": 404}, False),
    ("path~/api", {}, True),
    ("path~/API", {}, False),
    ("path!~/api", {}, False),
    ("path=/api/list", {}, True),
    ("path=/api", {}, False),
    ("list", {}, True),
    ("/api/li", {}, True),
    ("/api?x=1", {"path": "/api?x=1"}, True),
    ("authority=EMOJI-svc.emojivoto:8080", {}, True),
    ("authority~emoji", {}, True),
    ("host=web:80", {}, False),
    ("src=web", {}, True),
    ("src=web-1", {}, True),
    ("src=emoji", {}, False),
    ("dst=deploy/emoji", {}, True),
    ("dst=deployment/web", {}, False),
    ("dst=po/emoji-1", {}, True),
    ("from=ns/emojivoto", {}, True),
    ("to!=deploy/emoji", {}, False),
    ("src=192.0.2.7", {"src": OUTSIDE}, True),
    ("src=192.0.2.7:55000", {"src": OUTSIDE}, True),
    ("src=deploy/web", {"src": OUTSIDE}, False),
    ("latency>1ms", {"latency_us": 1200}, True),
    ("latency>1ms", {"latency_us": 800}, False),
    ("latency<=1.2ms", {"latency_us": 1200}, True),
    ("lat<500us", {"latency_us": 499}, True),
    ("dir=out", {}, True),
    ("direction=in", {}, False),
    ("dir=inbound", {"direction": Direction.INBOUND}, True),
    ("GET status=2xx path~/api dst=deploy/emoji latency<1s", {}, True),
    ("GET status=2xx path~/api dst=deploy/web latency<1s", {}, False),
])
def test_terms(text: str, kw: dict, expected: bool) -> None:
    assert passes(text, **kw) is expected


def test_response_terms_wait_for_the_response() -> None:
    started = joined(upto=1, status=500)
    for text in ("status=5xx", "status!=200", "latency>0us", "latency<1h", "status<600"):
        f = FeedFilter.parse(text)
        assert f.needs_response
        assert not f.matches(started), text
    assert FeedFilter.parse("GET path~/api").matches(started)
    assert not FeedFilter.parse("GET").needs_response


def test_request_terms_fail_when_the_start_was_not_seen() -> None:
    tracker = RequestTracker()
    midway = tracker.observe(steps()[1])
    for text in ("GET", "method!=POST", "path~/", "path!~/x", "authority~e", "authority!=x"):
        assert not FeedFilter.parse(text).matches(midway), text
    assert FeedFilter.parse("status=200 src=web").matches(midway)


@pytest.mark.parametrize(("text", "message"), [
    ("colour=red", "unknown field 'colour'"),
    ("status=5x", "bad status '5x'"),
    ("status=600", "bad status"),
    ("status>4xx", "status> takes a code"),
    ("status~5", "status takes =, !=, <, <=, >, >=, not '~'"),
    ("latency=10ms", "latency takes <, <=, >, >="),
    ("latency>10", "bad latency '10'"),
    ("latency>fast", "bad latency"),
    ("method=GET/1", "bad method"),
    ("src=svc/web", "unknown resource type 'svc'"),
    ("dst=deploy/Web", "invalid deployment name"),
    ("dir=up", "unknown direction 'up'"),
    ("dir!=in", "dir takes =, not '!='"),
    ("path=", "needs a value"),
])
def test_errors_are_one_line_and_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message) as info:
        FeedFilter.parse(f"GET {text}")
    assert "\n" not in str(info.value)


def test_canonical_text() -> None:
    f = FeedFilter.parse("get GET 5XX host=Web:80 to=deployment/emoji src=web lat>10MS")
    assert str(f) == ("path~get method=GET status=5xx authority=web:80 dst=deploy/emoji "
                      "src=web latency>10ms")


word = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=12)
terms = st.one_of(
    word,
    st.sampled_from(["GET", "POST", "500", "4xx", "method=put,get", "status>=400", "dir=in",
                     "src=web", "dst=po/emoji-1", "to=ns/emojivoto", "latency<2.5s",
                     "lat>=100us", "status!=2xx", "authority~EMOJI"]),
    st.tuples(st.sampled_from(["path", "authority"]), st.sampled_from(["=", "!=", "~", "!~"]),
              word).map("".join),
)


@given(st.lists(terms, max_size=6))
def test_parse_never_fails_but_with_a_filter_error_and_round_trips(words: list[str]) -> None:
    text = " ".join(words)
    try:
        f = FeedFilter.parse(text)
    except FilterError as e:
        assert "\n" not in str(e)
        return
    again = FeedFilter.parse(str(f))
    assert again == f
    assert str(again) == str(f)
    r = joined(src=Endpoint("10.9.9.9", 1, Workload("emojivoto", "web", "web-1")))
    assert again.matches(r) == f.matches(r)
