"""Captured bodies: gRPC split at length prefixes, text against binary, the JSON form
read back (and refused when it is not one)."""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import pytest
from tapkit import steps

from meshtui.model.bodies import body_lines, body_summary, grpc_messages, text_of
from meshtui.model.tap import CapturedBody
from meshtui.model.tap_json import BadEvent, Reader, tap_json, tap_json_line


def test_grpc_bodies_split_at_their_prefixes_even_when_cut() -> None:
    data = struct.pack(">BI", 0, 3) + b"abc" + struct.pack(">BI", 1, 100) + b"xy" + b""
    msgs, rest = grpc_messages(data)
    assert [(m.compressed, m.length, m.data, m.whole) for m in msgs] == [
        (False, 3, b"abc", True), (True, 100, b"xy", False)]
    assert rest == b""
    assert grpc_messages(data[:10])[1] == data[8:10]  # a prefix cut short
    body = CapturedBody(data, True, len(data))
    assert body_summary(body, grpc=True) == 'grpc[3B "abc", z100B base64:eHk=]…'
    assert "message 2: compressed=yes length=100, 2 captured" in body_lines(body, grpc=True)


def test_text_is_escaped_and_binary_is_not_text() -> None:
    assert text_of(b"a line of text\x1b[2J\n") == "a line of text\\x1b[2J\\n"
    assert text_of(b"\x00\x01\x02\x03 four") is None
    assert text_of(b"caf\xc3", truncated=True) == "caf"  # cut inside a character
    assert text_of(b"caf\xc3") is None


def test_bodies_survive_a_save_and_replay_and_bad_ones_are_refused() -> None:
    end = replace(steps()[2], request_body=CapturedBody(b"\x00\xffhi", True, 4),
                  response_body=CapturedBody(b"", False, 4))
    back = Reader().read_line(tap_json_line(end))
    assert back.request_body == end.request_body  # type: ignore[attr-defined]
    assert back.response_body == end.response_body  # type: ignore[attr-defined]
    for bad in ({"base64": "!!"}, {"base64": 3}, {"base64": "", "limit": 1 << 20}, [],
                {"base64": "aGVsbG8=", "limit": 2}):  # 5 bytes, past its own limit
        doc = tap_json(end)
        doc["responseEndEvent"]["capturedRequestBody"] = bad
        with pytest.raises(BadEvent, match="capturedRequestBody"):
            Reader().read_line(json.dumps(doc))


def test_a_wire_body_longer_than_anyone_may_ask_is_cut() -> None:
    """Whatever a proxy sends (a foreign or broken one), a client keeps at most the
    largest body anyone may ask for, and says it was cut."""
    from meshtui.client.convert import tap_event
    from meshtui.model.tap import MAX_CAPTURE_BODY
    from meshtui.v1 import common_pb2

    ev = common_pb2.TapEvent(response_end=common_pb2.ResponseEnd(
        request_body=common_pb2.CapturedBody(data=b"x" * (MAX_CAPTURE_BODY + 10),
                                             limit=MAX_CAPTURE_BODY + 10)))
    end = tap_event(ev)
    assert end is not None and end.request_body is not None  # type: ignore[attr-defined]
    body = end.request_body  # type: ignore[attr-defined]
    assert len(body.data) == MAX_CAPTURE_BODY and body.truncated
