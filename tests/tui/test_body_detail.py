"""Pilot tests of captured bodies in the tap feed: the detail pane shows text escaped,
binary as hex and gRPC message by message; the status line says bodies are captured."""

from __future__ import annotations

import dataclasses
import struct
import sys
from pathlib import Path

from tuikit import until

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import TapQuery
from meshtui.client.replay_source import ReplaySource
from meshtui.model.tap import CapturedBody
from meshtui.model.tap_json import tap_json_line
from meshtui.tui.app import MeshApp
from meshtui.tui.tap_screen import RequestDetail

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from tapkit import steps


def grpc_message(payload: bytes, compressed: int = 0) -> bytes:
    return struct.pack(">BI", compressed, len(payload)) + payload


def saved(tmp_path: Path) -> Path:
    """A JSONL file with a JSON request (text bodies) then a gRPC call (binary messages)."""
    req, rsp, end = steps(1, method="POST", path="/api/vote")
    end = dataclasses.replace(
        end, request_body=CapturedBody(b'{"emoji": "\x1b[31mred\x07"}', False, 64),
        response_body=CapturedBody(b"\x00\x01\x02\xffbinary\xfe", True, 11))
    greq, grsp, gend = steps(2, method="POST", path="/emojivoto.v1.EmojiService/ListAll",
                             grpc_status=0)
    greq = dataclasses.replace(greq, headers=(("content-type", "application/grpc"),))
    gend = dataclasses.replace(
        gend, request_body=CapturedBody(grpc_message(b""), False, 64),
        response_body=CapturedBody(grpc_message(b"\x0a\x05hello" + b"\x00" * 30)[:20], True, 20))
    path = tmp_path / "saved.jsonl"
    path.write_text("".join(tap_json_line(e) + "\n" for e in (req, rsp, end, greq, grsp, gend)))
    return path


async def open_detail(app: MeshApp, pilot, ups: int) -> str:  # type: ignore[no-untyped-def]
    screen = app.screen
    await until(lambda: screen.state == "stream ended")
    await pilot.pause(0.2)
    await pilot.press(*["up"] * ups, "enter")
    await until(lambda: isinstance(app.screen, RequestDetail))
    return str(app.screen.query_one("#detail").render())


async def test_the_detail_pane_shows_a_text_body_escaped_and_a_binary_one_in_hex(
        tmp_path: Path) -> None:
    app = MeshApp(ReplaySource(saved(tmp_path)), TapQuery("namespace", None, None),
                  buffer=1000, title="tap ns (replay)")
    async with app.run_test(size=(140, 60)) as pilot:
        text = await open_detail(app, pilot, 4)  # the first request's end line
    assert "request body" in text and "response body" in text
    assert '{"emoji": "\\x1b[31mred\\x07"}' in text and "\x1b" not in text
    assert "11 bytes captured (truncated)" in text
    assert "0000  00 01 02 ff 62 69 6e 61 72 79 fe" in text


async def test_the_detail_pane_splits_grpc_bodies_into_messages(tmp_path: Path) -> None:
    app = MeshApp(ReplaySource(saved(tmp_path)), TapQuery("namespace", None, None),
                  buffer=1000, title="tap ns (replay)")
    async with app.run_test(size=(140, 60)) as pilot:
        text = await open_detail(app, pilot, 1)  # the gRPC call's end line
    assert "message 1: compressed=no length=0" in text
    assert "1 gRPC message" in text
    assert "message 1: compressed=no length=37, 15 captured" in text


async def test_the_status_line_says_bodies_are_captured() -> None:
    app = MeshApp(FakeSource(tap_rps=100),
                  TapQuery("deployment", "emojivoto", "web", capture_body=4096),
                  title="tap deploy/web -n emojivoto")
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.pause(0.5)
        status = str(app.screen.query_one("#status").render())
    assert "capturing bodies (first 4,096 bytes)" in status


async def test_the_feed_says_once_when_proxies_capture_less_than_asked(
        tmp_path: Path) -> None:
    """Asked for 4,096 bytes, the proxies copied 64 (their --max-capture-body): the
    status line says so, as the CLI does."""
    app = MeshApp(ReplaySource(saved(tmp_path)),
                  TapQuery("namespace", None, None, capture_body=4096),
                  buffer=1000, title="tap ns (replay)")
    async with app.run_test(size=(240, 30)) as pilot:
        await until(lambda: app.screen.state == "stream ended")
        await pilot.pause(0.6)
        status = str(app.screen.query_one("#status").render())
    assert "bodies are captured up to 64 bytes, not 4096" in status
