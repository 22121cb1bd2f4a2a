"""Pilot tests of the tap feed against the deterministic fake source."""

from __future__ import annotations

import pytest
from textual.widgets import Input
from tuikit import until

from meshtui.client.fake_source import FakeSource
from meshtui.client.queries import TapQuery
from meshtui.client.tap_wire import StepTracker
from meshtui.model.tap import RequestInit, ResponseInit
from meshtui.tui.app import MeshApp
from meshtui.tui.feed import FeedView
from meshtui.tui.tap_screen import RequestDetail, TapScreen, render_item


def make_app(rps: float = 400.0, buffer: int = 100_000) -> MeshApp:
    return MeshApp(FakeSource(tap_rps=rps), TapQuery("deployment", "emojivoto", "web"),
                   buffer=buffer, title="tap deploy/web -n emojivoto")


def status_text(app: MeshApp) -> str:
    return str(app.screen.query_one("#status").render())


async def test_feed_follows_then_pauses_on_scroll_up_and_resumes_on_end() -> None:
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.6)
        feed = app.screen.query_one(FeedView)
        assert feed.shown > 0 and feed.following
        await pilot.press("up", "up")
        await pilot.pause(0.5)
        assert not feed.following and feed.pending > 0
        await pilot.pause(0.6)
        assert "new (End follows)" in status_text(app)
        await pilot.press("end")
        await pilot.pause(0.3)
        assert feed.following and feed.pending == 0


async def test_space_pauses_what_is_shown_while_intake_goes_on() -> None:
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.4)
        screen = app.screen
        assert isinstance(screen, TapScreen)
        await pilot.press("space")
        shown, received = screen.feed.shown, screen.received
        await pilot.pause(0.6)
        assert screen.feed.shown == shown and screen.received > received
        assert "PAUSED" in status_text(app)
        await pilot.press("space")
        await pilot.pause(0.3)
        assert screen.feed.shown > shown


@pytest.mark.parametrize("text", [
    "status=5xx", "(status>=500 or status<100) and (GET or not GET)"])
async def test_filter_by_status_class_shows_only_failures(text: str) -> None:
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.6)
        await pilot.press("slash")
        if len(text) < 20:
            await pilot.press(*text)
        else:
            # Typed as a paste: a key press under a busy feed costs the pilot a wait
            # for idle each (some 0.3 s here), the app nothing of the kind.
            app.screen.query_one("#filter", Input).insert_text_at_cursor(text)
        await pilot.press("enter")
        await pilot.pause(0.4)
        feed = app.screen.query_one(FeedView)
        assert feed.shown > 0
        statuses = {feed.ring.get(s).status for s in feed._view}  # type: ignore[union-attr]
        assert statuses == {500}
        assert f"filter: {text}" in status_text(app)
        await pilot.press("escape")  # clears the filter
        await pilot.pause(0.3)
        assert {feed.ring.get(s).status for s in feed._view} >= {200, 500}  # type: ignore[union-attr]


async def test_a_bad_filter_says_why_and_keeps_the_feed() -> None:
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("slash", *"GET and latency>soon", "enter")
        await pilot.pause(0.2)
        assert app.screen.query_one(FeedView).shown > 0
        assert any("latency" in str(n.message) and "column 17" in str(n.message)
                   for n in app._notifications)
        assert app.screen.query_one("#filter", Input).cursor_position == 16


async def test_enter_opens_the_request_detail() -> None:
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.4)
        await pilot.press("up", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, RequestDetail)
        text = str(app.screen.query_one("#detail").render())
        assert "destination" in text and "deploy/web" in text
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TapScreen)


async def test_the_ring_bounds_what_is_kept() -> None:
    app = make_app(rps=2000, buffer=300)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(1.0)
        feed = app.screen.query_one(FeedView)
        assert feed.ring.next_seq > 300
        assert feed.shown <= 300 and len(feed.ring) == 300
        assert feed.ring.dropped == feed.ring.next_seq - 300


def test_hostile_paths_render_as_text() -> None:
    from meshtui.client.fake_source import fake_request

    ev, _rsp, _end = fake_request(97, 0)  # one in 97 carries escapes and markup
    assert isinstance(ev, RequestInit)
    [rec], [slot] = StepTracker().join_events([ev])
    plain = render_item(rec, slot).plain
    assert "\x1b" not in plain and "[bold]" in plain and "\\x1b[2J" in plain


async def test_a_feed_filled_before_its_first_layout_still_shows_its_end() -> None:
    """A tap whose stream ends at once: the first frame comes before the feed has a
    size, and no later frame brings anything; the feed must still end up at its end."""
    from rich.text import Text
    from textual.app import App, ComposeResult

    class OneFeed(App[None]):
        def compose(self) -> ComposeResult:
            yield FeedView(lambda item, tag: Text(f"line {item}"))

        def on_mount(self) -> None:
            feed = self.query_one(FeedView)
            feed.add(range(300))
            feed._frame()  # what the frame timer does, here before any layout

    app = OneFeed()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause(0.3)
        feed = app.query_one(FeedView)
        assert feed.following
        assert feed.scroll_offset.y == feed.max_scroll_y > 0
        assert feed.render_line(feed.size.height - 1).text.startswith("line 299")


async def test_limit_takes_that_many_events_then_stops_and_keeps_them_on_screen() -> None:
    app = MeshApp(FakeSource(tap_rps=2000), TapQuery("deployment", "emojivoto", "web"),
                  title="tap deploy/web -n emojivoto", limit=250)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, TapScreen)
        await until(lambda: screen.state.startswith("stopped"))
        await pilot.pause(0.5)  # the source would have sent hundreds more by now
        assert screen.received == 250 and screen.feed.shown == 250
        assert "stopped at --limit 250" in status_text(app)
        await pilot.press("up", "enter")  # what was taken can still be read in detail
        await pilot.pause(0.2)
        assert isinstance(app.screen, RequestDetail)


async def test_w_writes_what_the_filter_shows_and_e_exports_har(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from meshtui.model.tap_json import Reader

    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.6)
        await pilot.press("space")  # hold the view still while it is written
        await pilot.press("slash", *"status=5xx", "enter")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, TapScreen)
        shown = screen.feed.shown
        assert shown > 0
        target = tmp_path / "failures.jsonl"
        await pilot.press("w")
        await pilot.pause(0.1)
        box = app.screen.query_one("#save-path", Input)
        assert box.value.startswith("tap-") and box.value.endswith(".jsonl")
        box.value = str(target)
        await pilot.press("enter")
        await pilot.pause(0.2)
        events = [Reader().read_line(line) for line in target.read_text().splitlines()]
        assert len(events) == shown
        assert {e.status for e in events if isinstance(e, ResponseInit)} == {500}
        assert any(str(target) in str(n.message) for n in app._notifications)
        await pilot.press("e")
        await pilot.pause(0.1)
        app.screen.query_one("#save-path", Input).value = str(tmp_path / "x.har")
        await pilot.press("enter")
        await pilot.pause(0.2)
        entries = json.loads((tmp_path / "x.har").read_text())["log"]["entries"]
        assert entries and {e["response"]["status"] for e in entries} == {500}


async def test_the_detail_offers_the_request_as_curl() -> None:
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.4)
        await pilot.press("space", "up", "enter")
        await pilot.pause(0.2)
        detail = app.screen
        assert isinstance(detail, RequestDetail)
        assert detail.curl.startswith("curl -sS -X ")
        assert detail.curl in str(detail.query_one("#detail").render())
        await pilot.press("c")
        await pilot.pause(0.1)
        assert app.clipboard == detail.curl


def test_a_long_request_id_stays_apart_from_the_direction() -> None:
    """Ids grow with a long run (base:stream past eight characters): the direction after
    them must still read as a word of its own."""
    from dataclasses import replace

    from meshtui.client.fake_source import fake_request
    from meshtui.model.tap import StreamId

    ev, _rsp, _end = fake_request(1, 0)
    long = replace(ev, stream=StreamId(666, 66653))
    [rec], [slot] = StepTracker().join_events([long])
    words = render_item(rec, slot).plain.split()
    assert words[1] == "666:66653" and words[2] in ("in", "out")
