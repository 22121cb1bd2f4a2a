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
