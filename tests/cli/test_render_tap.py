"""Tap lines and JSON as Linkerd prints them, and untrusted text shown, not obeyed."""

from __future__ import annotations

import json

from meshtui.client.convert import tap_event
from meshtui.model.tap_json import tap_json, tap_json_line
from meshtui.output.tap import tap_line
from meshtui.v1 import common_pb2


def wire(kind: str, **fields: object) -> common_pb2.TapEvent:
    ev = common_pb2.TapEvent(
        source=common_pb2.Endpoint(ip="10.0.0.1", port=5000,
                                   workload=common_pb2.Workload(namespace="emojivoto",
                                                                deployment="vote-bot")),
        destination=common_pb2.Endpoint(ip="10.0.0.2", port=8080,
                                        workload=common_pb2.Workload(namespace="emojivoto",
                                                                     deployment="web",
                                                                     pod="web-1")),
        proxy_direction=common_pb2.INBOUND, id=common_pb2.StreamId(base=3, stream=17),
        timestamp_us=1)
    getattr(ev, kind).CopyFrom(getattr(common_pb2, {
        "request_init": "RequestInit", "response_init": "ResponseInit",
        "response_end": "ResponseEnd"}[kind])(**fields))
    return ev


def test_lines_look_like_linkerds() -> None:
    req = tap_event(wire("request_init", method="GET", authority="web:80", path="/api/list"))
    rsp = tap_event(wire("response_init", http_status=200, since_request_init_us=1234))
    end = tap_event(wire("response_end", since_response_init_us=56, response_bytes=512))
    assert req is not None and rsp is not None and end is not None
    base = "id=3:17 proxy=in src=10.0.0.1:5000 dst=10.0.0.2:8080 tls=false"
    assert tap_line(req) == f"req {base} :method=GET :authority=web:80 :path=/api/list"
    assert tap_line(rsp) == f"rsp {base} :status=200 latency=1234µs"
    assert tap_line(end) == f"end {base} duration=56µs response-length=512B"
    assert tap_line(req, wide=True).endswith(
        "src_res=deploy/vote-bot src_ns=emojivoto dst_res=deploy/web dst_ns=emojivoto")


def test_json_keeps_linkerds_field_names() -> None:
    req = tap_event(wire("request_init", method="POST", scheme="http", authority="a", path="/p",
                         headers=[common_pb2.Header(name="x", value=b"y")]))
    end = tap_event(wire("response_end", since_request_init_us=2_500_000,
                         since_response_init_us=1, grpc_status_code=14))
    assert req is not None and end is not None
    j = json.loads(json.dumps(tap_json(req)))
    assert j["proxyDirection"] == "INBOUND"
    assert j["source"] == {"ip": "10.0.0.1", "port": 5000,
                           "metadata": {"namespace": "emojivoto", "deployment": "vote-bot"}}
    assert j["requestInitEvent"]["id"] == {"base": 3, "stream": 17}
    assert j["requestInitEvent"]["headers"] == [{"name": "x", "valueStr": "y"}]
    e = tap_json(end)["responseEndEvent"]
    assert e["sinceRequestInit"] == {"seconds": 2, "nanos": 500_000_000}
    assert e["grpcStatusCode"] == 14
    assert tap_line(end).split()[6] == "grpc-status=Unavailable"


def test_paths_with_escapes_and_markup_are_shown_literally() -> None:
    ev = tap_event(wire("request_init", method="GET", authority="evil\x1b]0;pwned\x07",
                        path="/[bold]x\x1b[2J\x9b31m",
                        headers=[common_pb2.Header(name="h", value=b"\x1b[31mred\xff")]))
    assert ev is not None
    line = tap_line(ev)
    assert "\x1b" not in line and "\x9b" not in line and "\x07" not in line
    assert ":path=/[bold]x\\x1b[2J\\x9b31m" in line
    assert ":authority=evil\\x1b]0;pwned\\x07" in line
    # JSON carries the original (bytes that are not UTF-8 in base64, as Linkerd's
    # valueBin), in escapes a terminal does not obey.
    import base64

    saved = tap_json(ev)["requestInitEvent"]
    assert base64.b64decode(saved["headers"][0]["valueBin"]) == b"\x1b[31mred\xff"
    # (the byte 0x9b, not UTF-8, cannot be text: U+FFFD)
    assert saved["path"] == "/[bold]x\x1b[2J\ufffd31m"
    printed = tap_json_line(ev)
    assert "\x1b" not in printed and "\x9b" not in printed and "\x07" not in printed
