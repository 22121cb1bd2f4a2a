"""The filter typed after `/` in the tap feed."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tapkit import OUTSIDE, joined, steps

from meshtui.model.feed_filter import FeedFilter, FilterError
from meshtui.model.inventory import Workload
from meshtui.model.tap import Direction, Endpoint, Request, RequestTracker


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
    assert str(f) == ("get and GET and 5xx and authority=web:80 and dst=deploy/emoji "
                      "and src=web and latency>10ms")
    assert str(FeedFilter.parse("not (GET or POST)  (5xx or h.X-Id~a) not not lat>1s")) == (
        "not (GET or POST) and (5xx or h.x-id~a) and not not latency>1s")
    assert FeedFilter.parse("GET (5xx 4xx) or (POST or (PUT))") == FeedFilter.parse(
        "GET and 5xx and 4xx or POST or PUT")
    quoted = FeedFilter.parse('path="/a b" "x)y" "or"')
    assert str(quoted) == 'path="/a b" and "x)y" and "or"'
    assert FeedFilter.parse(str(quoted)) == quoted


def with_headers(request: Request, *headers: tuple[str, str],
                 response: tuple[tuple[str, str], ...] = ()) -> Request:
    assert request.init is not None and request.response is not None
    request.init = replace(request.init, headers=headers)
    request.response = replace(request.response, headers=response)
    return request


@pytest.mark.parametrize(("text", "kw", "expected"), [
    ("GET and status=200", {}, True),
    ("GET and status=500", {}, False),
    ("POST or status=200", {}, True),
    ("POST or status=500", {}, False),
    ("not POST", {}, True),
    ("not (GET or POST)", {}, False),
    ("(POST or GET) and (5xx or latency>1ms)", {"latency_us": 1200}, True),
    ("POST or GET and 5xx", {}, False),  # and binds tighter than or
    ("GET or POST and 5xx", {}, True),
    ("NOT get AND path~^/api OR POST", {"path": "/api/budget"}, False),
    ("NOT get AND path~^/api OR POST", {}, True),  # keywords in any case; "get" is a word
    ("path~^/api/l.st$", {}, True),
    ("path~^/(api|web)/", {}, True),
    ("path~^/(x|y)", {}, False),
    ("path!~list$", {}, False),
    ("method~^(GET|HEAD)$", {}, True),
    ("method~^p", {}, False),
    ("authority~^EMOJI-", {}, True),
    ("src~^deploy/w", {}, True),
    ("dst~^deploy/w", {}, False),
    ("dst!~emoji", {}, False),
    ("grpc-status=14", {"grpc_status": 14}, True),
    ("grpc-status>0", {"grpc_status": 0}, False),
    ("grpc-status=0", {}, False),  # not gRPC: nothing to compare
    ("bytes>1000", {"response_bytes": 2048}, True),
    ("bytes<=512", {}, True),
    ("bytes!=512", {}, False),
    ("status = 200", {}, True),  # spaces around the operator
    ('path="/api/list"', {}, True),
    ('"list"', {}, True),
])
def test_expressions(text: str, kw: dict, expected: bool) -> None:
    assert passes(text, **kw) is expected


def test_headers_of_request_response_and_trailers() -> None:
    r = with_headers(joined(), ("User-Agent", "curl/8.5"), ("x-id", "a b"),
                     response=(("content-type", "application/json"),))
    assert r.end is not None
    r.end = replace(r.end, trailers=(("grpc-message", "gone"),))
    yes = ["h.user-agent~^curl/", "h.USER-AGENT=curl/8.5", 'h.x-id="a b"',
           "h.content-type~json", "h.grpc-message=gone", "h.x-id!=c", "not h.missing~."]
    no = ["h.user-agent=curl", "h.missing=x", "h.missing!=x", "h.x-id!~a",
          "h.content-type=text/plain"]
    for text in yes:
        assert FeedFilter.parse(text).matches(r), text
    for text in no:
        assert not FeedFilter.parse(text).matches(r), text


def test_not_is_plain_logic_while_a_term_fails_unknown() -> None:
    started = joined(upto=1)
    assert not FeedFilter.parse("status!=500").matches(started)
    assert FeedFilter.parse("not status=500").matches(started)
    assert FeedFilter.parse("not status=500").needs_response


@pytest.mark.parametrize(("text", "position", "message"), [
    ("GET and colour=red", 8, "unknown field 'colour'"),
    ("status=5x", 7, "bad status '5x'"),
    ("GET and (POST or", 16, "ends where a term"),
    ("GET and (POST or PUT", 8, "'(' that is not closed"),
    ("GET)", 3, "')' that no '('"),
    ("GET and or POST", 8, "'or' where a term"),
    ("()", 1, "empty parentheses"),
    ("path~(x", 5, "bad regex"),
    ('path="abc', 5, "quote is not closed"),
    ("latency > fast", 10, "bad latency"),
    ("bytes>1k", 6, "takes a whole number"),
    ("h.x<3", 3, "a header takes =, !=, ~, !~"),
    ("path=", 5, "needs a value"),
])
def test_errors_say_where(text: str, position: int, message: str) -> None:
    with pytest.raises(FilterError, match=re.escape(message)) as info:
        FeedFilter.parse(text)
    assert info.value.position == position


word = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=12)
terms = st.one_of(
    word,
    st.sampled_from(["GET", "POST", "500", "4xx", "method=put,get", "status>=400", "dir=in",
                     "src=web", "dst=po/emoji-1", "to=ns/emojivoto", "latency<2.5s",
                     "lat>=100us", "status!=2xx", "authority~EMOJI"]),
    st.tuples(st.sampled_from(["path", "authority"]), st.sampled_from(["=", "!=", "~", "!~"]),
              word).map("".join),
)


joiners = st.sampled_from([" ", " and ", " or ", " not ", " (", ") ", " AND not ("])


@given(st.lists(st.tuples(terms, joiners).map("".join), max_size=6))
def test_parse_never_fails_but_with_a_filter_error_and_round_trips(words: list[str]) -> None:
    text = "".join(words)
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
