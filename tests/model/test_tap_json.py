"""Tap events written as Linkerd's JSON and read back, and files that are not."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tapkit import OUTSIDE, steps

from meshtui.model.tap import ResponseEnd
from meshtui.model.tap_json import BadEvent, Reader, tap_json, tap_json_line


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


def test_a_lone_surrogate_reads_back_as_a_visible_escape() -> None:
    line = tap_json_line(steps()[0]).replace('"path":"', '"path":"\\ud800')
    ev = Reader().read_line(line)
    assert ev.path.startswith("\\ud800")  # type: ignore[attr-defined]
    ev.path.encode("utf-8")  # type: ignore[attr-defined]  # printable on any terminal
