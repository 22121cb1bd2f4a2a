"""Tap events written as Linkerd's JSON and read back, and files that are not."""

from __future__ import annotations

import gc
import json
from dataclasses import replace

import pytest
from tapkit import OUTSIDE, steps

from meshtui.model import redact
from meshtui.model.tap import Direction, RequestInit, ResponseEnd, TapEvent
from meshtui.model.tap_json import BadEvent, Reader, tap_json, tap_json_line
from meshtui.model.tap_lines import Line


def test_every_step_reads_back_equal() -> None:
    req, rsp, end = steps(grpc_status=14, src=OUTSIDE)
    req = replace(req, headers=(("x-id", "a b"), ("user-agent", "curl/8")), tls=True)
    end = replace(end, trailers=(("grpc-message", "gone"),))
    reset = replace(end, grpc_status=None, reset_code=2)
    reader = Reader()
    for ev in (req, rsp, end, reset):
        assert reader.read_line(tap_json_line(ev)) == ev


@pytest.mark.parametrize(("line", "why"), [
    ("not json", "not JSON"),
    ("[1, 2]", "the line is not an object"),
    ('{"proxyDirection": "SIDEWAYS"}', "proxyDirection"),
    ("[" * 100_000, "not JSON"),
])
def test_lines_that_are_not_events_say_why(line: str, why: str) -> None:
    with pytest.raises(BadEvent, match=why):
        Reader().read_line(line)


def test_wrong_types_and_ranges_are_bad_events_not_crashes() -> None:
    good = tap_json(steps()[2])
    assert isinstance(Reader().read_event(good), ResponseEnd)
    for path, value in ((("source", "port"), 70000), (("source", "ip"), 5),
                        (("source",), [1]), (("responseEndEvent", "responseBytes"), -1),
                        (("responseEndEvent", "id"), "x"), (("source", "metadata"), {"pod": []}),
                        (("responseEndEvent", "sinceRequestInit", "nanos"), 1.5),
                        (("responseEndEvent", "trailers"), [{"name": 1}])):
        bad = json.loads(json.dumps(good))
        at = bad
        for key in path[:-1]:
            at = at[key]
        at[path[-1]] = value
        with pytest.raises(BadEvent):
            Reader().read_event(bad)


def test_strings_from_a_file_are_cleaned() -> None:
    line = tap_json(steps()[0])
    line["requestInitEvent"]["path"] = "/\x1b[2J\u202e"
    line["source"]["metadata"]["pod"] = "p\x9bq"
    ev = Reader().read_event(line)
    assert ev.path == "/\\x1b[2J\\u202e"  # type: ignore[attr-defined]
    assert "\x9b" not in ev.source.workload.pod


def _mutations() -> list[object]:
    """Lines near the shape tap -o json writes, each wrong (or odd) in one place."""
    base = [tap_json(ev) for ev in steps(grpc_status=2)]
    out: list[object] = []
    odd: list[tuple[tuple[str, ...], object]] = [
        (("timestampUs",), True), (("timestampUs",), 2**64), (("timestampUs",), None),
        (("timestampUs",), 1.0), (("proxyDirection",), [1]), (("proxyDirection",), None),
        (("source", "metadata"), None), (("source", "metadata", "pod"), None),
        (("source", "port"), "٨٠"), (("source", "ip"), "١٠.٠.٠.١"), (("tls",), "yes"),
    ]
    for obj in base:
        kind = next(k for k in obj if k.endswith("Event"))
        odd_kind: list[tuple[tuple[str, ...], object]] = [
            ((kind,), None), ((kind, "id"), None), ((kind, "id", "stream"), -1),
            ((kind, "id", "base"), 2**63), ((kind, "sinceRequestInit"), None),
            ((kind, "sinceRequestInit", "nanos"), 10**9), ((kind, "httpStatus"), 1000),
            ((kind, "grpcStatusCode"), None), ((kind, "grpcStatusCode"), 2**32),
            ((kind, "headers"), None), ((kind, "headers"), [{"name": 1}]),
            ((kind, "headers"), [{"name": "a", "valueStr": None}]),
            ((kind, "headers"), [{"name": "a"}]), ((kind, "path"), "/\ud800x"),
            ((kind, "method"), "G\x1bET"), ((kind, "responseBytes"), True),
        ]
        for path, value in odd + odd_kind:
            line = json.loads(json.dumps(obj))
            node = line
            for key in path[:-1]:
                node = node.setdefault(key, {}) if isinstance(node, dict) else {}
            node[path[-1]] = value
            out.append(line)
        both = dict(obj, requestInitEvent=base[0]["requestInitEvent"])
        out.append(both)  # two steps on one line: the first in the order of the format
    return out


@pytest.mark.parametrize("obj", _mutations())
def test_the_fast_reader_accepts_and_refuses_as_the_general_one(obj: object) -> None:
    line = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        want: object = Reader().read_event(json.loads(line.decode("utf-8", "surrogatepass")))
    except BadEvent:
        want = BadEvent
    try:
        got: object = Reader().read_line(line)
    except BadEvent:
        got = BadEvent
    assert got == want
    try:  # kept as read, then made the model event when looked at
        step = Reader().read_step(line)
        kept: object = step if isinstance(step, TapEvent) else step.event()
    except BadEvent:
        kept = BadEvent
    assert kept == want


def test_a_lone_surrogate_reads_back_as_a_visible_escape() -> None:
    line = tap_json_line(steps()[0]).replace('"path":"', '"path":"\\ud800')
    ev = Reader().read_line(line)
    assert ev.path.startswith("\\ud800")  # type: ignore[attr-defined]
    ev.path.encode("utf-8")  # type: ignore[attr-defined]  # printable on any terminal


def _kept(ev: TapEvent) -> Line:
    step = Reader().read_step(tap_json_line(ev))
    assert isinstance(step, Line)
    return step


@pytest.mark.parametrize("redactor", [(), ("x-tenant",)])
def test_a_kept_line_answers_as_its_model_event(redactor: tuple[str, ...]) -> None:
    req, rsp, end = steps(7, base=3, grpc_status=14, direction=Direction.INBOUND,
                          path="/v1/x?token=abc&id=\x1b&api_key=1#top",
                          authority="bob:hunter2@emoji-svc:8080")
    req = replace(req, method="G\x1bET", headers=(
        ("Authorization", "Bearer s3cret"), ("User-Agent", "curl\x1b[2J"),
        ("X-Tenant", "acme"), ("x-\u202eid", "7"), ("user-agent", "again")))
    rsp = replace(rsp, headers=(("set-cookie", "sid=1"), ("content-type", "text/plain")))
    end = replace(end, trailers=(("grpc-message", "gone\x07"),), tls=True)
    redact.use(redactor)
    try:
        for ev in (req, rsp, end):
            line = _kept(ev)
            model = Reader().read_event(tap_json(ev))  # the general reader
            assert line.event() == model
            assert line.request_key == model.request_key
            assert (line.direction, line.source, line.destination, line.tls) == (
                model.direction, model.source, model.destination, model.tls)
            for field in ("method", "scheme", "authority", "path"):
                assert line.text(field) == getattr(model, field, "")
            assert line.status == getattr(model, "status", None)
            assert line.latency_us == getattr(model, "latency_us", None)
            assert line.grpc_status == getattr(model, "grpc_status", None)
            assert line.response_bytes == getattr(model, "response_bytes", None)
            heads = model.trailers if isinstance(model, ResponseEnd) else model.headers  # type: ignore[attr-defined]
            for name in ("authorization", "user-agent", "x-tenant", "x-\\u202eid",
                         "set-cookie", "grpc-message", "missing"):
                assert line.header_values(name) == [v for n, v in heads if n.lower() == name]
        model_req = _kept(req).event()
        assert isinstance(model_req, RequestInit)
        assert model_req.path == "/v1/x?token=<redacted>&id=\\x1b&api_key=<redacted>#top"
        assert model_req.authority == "<redacted>@emoji-svc:8080"
        assert model_req.method == "G\\x1bET"
        assert ("X-Tenant", "<redacted>" if redactor else "acme") in model_req.headers
    finally:
        redact.use(())


def test_kept_lines_are_out_of_the_collectors_sight() -> None:
    # A replay keeps a million of them: were they tracked, every full collection
    # would walk them all (seconds, at that size).
    req, rsp, end = steps()
    req = replace(req, headers=(("user-agent", "curl/8"),))
    for ev in (req, rsp, end):
        line = _kept(ev)
        gc.collect()  # a tuple of untracked items is untracked by a collection
        assert not gc.is_tracked(line) and not gc.is_tracked(line.detail)
        assert not any(gc.is_tracked(x) for x in gc.get_referents(line.detail))


def test_lines_with_bodies_are_read_at_once_so_a_bad_body_is_a_bad_line() -> None:
    from meshtui.model.tap import CapturedBody

    end = replace(steps()[2], request_body=CapturedBody(b"hi", False, 4))
    step = Reader().read_step(tap_json_line(end))
    assert isinstance(step, ResponseEnd) and step == end
    doc = tap_json(end)
    doc["responseEndEvent"]["capturedRequestBody"] = {"base64": "!!"}
    with pytest.raises(BadEvent, match="capturedRequestBody"):
        Reader().read_step(json.dumps(doc))


def test_saving_a_replay_writes_the_same_file_and_the_original_text() -> None:
    """What the feed shows is escaped for the terminal; what is saved is the original:
    a replayed file saved again is the same file, however often, and a backslash
    stays one backslash (it had doubled on each save)."""
    wire = tap_json(steps()[0])
    wire["requestInitEvent"]["path"] = "/C:\\temp/\x1b[2J\u202e\x85"
    wire["requestInitEvent"]["headers"] = [
        {"name": "x-dir", "valueStr": "C:\\temp"},
        {"name": "x-raw", "valueBin": "/2Fi"},  # 0xff 'a' 'b': not UTF-8
    ]
    shown = Reader().read_event(wire)
    assert shown.path == "/C:\\\\temp/\\x1b[2J\\u202e\\u0085"  # type: ignore[attr-defined]
    assert dict(shown.headers)["x-raw"] == "\\xffab"  # type: ignore[attr-defined]
    first = tap_json_line(shown)
    saved = json.loads(first)["requestInitEvent"]
    assert saved["path"] == "/C:\\temp/\x1b[2J\u202e\x85"
    assert saved["headers"] == wire["requestInitEvent"]["headers"]
    # Nothing a terminal obeys is in the line itself: JSON's escapes carry it.
    assert not any(c in first for c in "\x1b\u202e\x85\x9b")
    again = Reader().read_line(first)
    assert again == shown
    assert tap_json_line(again) == first


@pytest.mark.parametrize("bad", ["not base64!", 5])
def test_a_value_in_base64_that_is_not_is_a_bad_line(bad: object) -> None:
    line = tap_json(steps()[0])
    line["requestInitEvent"]["headers"] = [{"name": "x", "valueBin": bad}]
    with pytest.raises(BadEvent, match="valueBin"):
        Reader().read_line(json.dumps(line))


def test_a_c1_control_and_a_byte_that_is_not_utf8_are_saved_apart() -> None:
    """cp1252's quotes (0x93, 0x94) are bytes, saved as valueBin; a real U+0093 is text."""
    import base64

    wire = tap_json(steps()[0])
    wire["requestInitEvent"]["headers"] = [
        {"name": "x-quoted", "valueBin": base64.b64encode(b"\x93hi\x94").decode()},
        {"name": "x-c1", "valueStr": "a\u0093b"}]
    saved = json.loads(tap_json_line(Reader().read_event(wire)))["requestInitEvent"]
    assert saved["headers"] == wire["requestInitEvent"]["headers"]
