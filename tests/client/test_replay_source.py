"""A replayed file read as the feed reads it: lines kept as msgspec decoded them, joined
into requests and filtered as model events are, bad lines skipped and counted."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from meshtui.client import replay_source
from meshtui.client.queries import TapBatch, TapQuery
from meshtui.client.replay_source import ReplaySource
from meshtui.client.tap_wire import LineEvents, StepTracker
from meshtui.model.feed_filter import FeedFilter
from meshtui.model.inventory import Workload
from meshtui.model.tap import (
    CapturedBody,
    Direction,
    Endpoint,
    RequestInit,
    RequestTracker,
    TapEvent,
)
from meshtui.model.tap_json import Reader, tap_json, tap_json_line
from meshtui.model.tap_lines import Line

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from tapkit import steps

NODE = Endpoint("10.0.0.9", 8080)  # no workload: the proxy is named by its address


def traffic(requests: int) -> list[TapEvent]:
    """Requests whose steps interleave, some inbound, some to an endpoint with no pod,
    some with headers and bodies."""
    out: list[TapEvent] = []
    for i in range(requests):
        req, rsp, end = steps(i, base=i % 3, method=("GET", "POST")[i % 4 // 3],
                              status=(200, 503, 404)[i % 3], path=f"/p{i % 4}",
                              direction=(Direction.OUTBOUND, Direction.INBOUND)[i % 2],
                              dst=NODE if i % 5 == 0 else steps()[0].destination,
                              latency_us=900 + i)
        req = replace(req, headers=(("user-agent", f"bot/{i % 2}"), ("x-api-key", "k")))
        if i % 7 == 0:
            end = replace(end, response_body=CapturedBody(b"body", False, 64))
        out.extend((req, rsp, end))
    # the steps of neighbouring requests interleave, as a proxy reports them
    return [out[j] for k in range(0, len(out), 6) for j in
            (k, k + 3, k + 1, k + 4, k + 2, k + 5) if j < len(out)]


def read_all(source: ReplaySource, query: TapQuery | None = None) -> list[TapBatch]:
    async def go() -> list[TapBatch]:
        return [b async for b in source.tap(query or TapQuery("namespace", None, None))]

    return asyncio.run(go())


def test_bad_lines_among_good_ones_are_counted_and_every_good_one_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_source, "BATCH", 16)  # bad lines inside batches and at edges
    events = traffic(30)
    bad_id = tap_json(events[0])
    bad_id["requestInitEvent"]["id"] = {"base": -1}
    bad_body = tap_json(events[4])
    bad_body["responseEndEvent"]["capturedResponseBody"] = {"base64": "!!"}
    inserts = {7: "garbage \x1b[2J", 20: json.dumps(bad_id), 21: "", 33: json.dumps(bad_body),
               50: '{"proxyDirection": "OUTBOUND"}'}
    odd = next(i for i, ev in enumerate(events) if i >= 40 and isinstance(ev, RequestInit))
    surrogate = tap_json(events[odd])  # a lone surrogate: the general reader takes it
    surrogate["requestInitEvent"]["path"] = "/\ud800x"
    lines = []
    for i, ev in enumerate(events):
        if i in inserts:
            lines.append(inserts[i])
        lines.append(json.dumps(surrogate) if i == odd else tap_json_line(ev))
    path = tmp_path / "saved.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")

    source = ReplaySource(path)
    batches = read_all(source)
    assert all(isinstance(b.events, LineEvents) for b in batches) and len(batches) > 5
    got = [ev for b in batches for ev in b.events]
    general = Reader()  # what the general reader makes of each good line, alone
    assert got == [general.read_event(surrogate if i == odd else tap_json(ev))
                   for i, ev in enumerate(events)]
    assert got[odd].path == "/\\ud800x"  # type: ignore[attr-defined]
    assert got[0].headers[1] == ("x-api-key", "<redacted>")  # type: ignore[attr-defined]
    assert (source.read, source.bad) == (len(events), 4)
    assert batches[-1].notes == ("4 bad lines skipped in saved.jsonl (first at line 8: "
                                 "not JSON (JSONDecodeError))",)
    kept = [s for b in batches for s in b.events.lines]  # type: ignore[attr-defined]
    # kept as read but for the ends with bodies (read at once) and the general reader's
    assert sum(not isinstance(s, Line) for s in kept) == 5 + 1


@pytest.mark.parametrize("text", [
    "GET", "status=5xx", "status>=300", "503", "path~/p1", "path=/p2", "authority~EMOJI",
    "latency>910us", "latency<910us", "dst=deploy/emoji", "dst=10.0.0.9", "src=web",
    "dir=out", "dir=in", "h.user-agent~1", "h.x-api-key=k", "h.x-api-key~redacted",
    "bytes>100", "status!=200 path~/",
])
def test_a_replay_joins_and_filters_as_the_model_does(tmp_path: Path, text: str) -> None:
    events = traffic(20)
    path = tmp_path / "saved.jsonl"
    path.write_text("".join(tap_json_line(ev) + "\n" for ev in events))
    tracker, model = StepTracker(), RequestTracker()
    recs = []
    for batch in read_all(ReplaySource(path)):
        recs.extend(tracker.join_events(batch.events)[0])
    assert all(rec._events is None for rec in recs)  # nothing converted to join them
    general = Reader()
    want = [model.observe(general.read_event(tap_json(ev))) for ev in events]
    flt = FeedFilter.parse(text)
    assert [flt.matches(r) for r in recs] == [flt.matches(r) for r in want]
    for rec, w in zip(recs, want, strict=True):
        got = rec.request()
        assert (got.init, got.response, got.end) == (w.init, w.response, w.end)
    assert (tracker.completed, len(tracker)) == (model.completed, len(model))


def test_the_feed_filters_a_replay_on_what_redaction_left(tmp_path: Path) -> None:
    path = tmp_path / "saved.jsonl"
    path.write_text("".join(tap_json_line(ev) + "\n" for ev in traffic(4)))
    (batch,) = read_all(ReplaySource(path))
    recs = StepTracker().join_events(batch.events)[0]
    assert all(FeedFilter.parse("h.x-api-key=<redacted>").matches(r) for r in recs)
    assert not any(FeedFilter.parse("h.x-api-key=k").matches(r) for r in recs)


def test_a_request_joins_across_the_fast_and_the_general_reader() -> None:
    req, rsp, end = steps(4, dst=Endpoint("10.0.0.2", 8080, Workload("emojivoto", "", "p-1")),
                          direction=Direction.INBOUND)
    odd = tap_json(req)
    odd["requestInitEvent"]["path"] = "/\ud800"  # read by the general reader
    reader = Reader()
    line = json.dumps(odd).encode("utf-8", "surrogatepass")
    kept = [reader.read_step(line), reader.read_step(tap_json_line(rsp)),
            reader.read_step(tap_json_line(end))]
    assert [type(s) for s in kept] == [type(req), Line, Line]
    recs, slots = StepTracker().join_events(kept)
    assert recs[0] is recs[1] is recs[2] and list(slots) == [0, 1, 2]
    assert recs[0].request().end == end and recs[0].path == "/\\ud800"


def test_a_query_reads_model_events_and_keeps_what_it_asks_for(tmp_path: Path) -> None:
    events = traffic(12)
    path = tmp_path / "saved.jsonl"
    path.write_text("".join(tap_json_line(ev) + "\n" for ev in events))
    batches = read_all(ReplaySource(path), TapQuery("namespace", None, None, method="POST"))
    kept = [s for b in batches for s in b.events.lines]  # type: ignore[attr-defined]
    general = Reader()
    posts = {ev.request_key for ev in events if getattr(ev, "method", "") == "POST"}
    assert posts and kept == [general.read_event(tap_json(ev)) for ev in events
                              if ev.request_key in posts]


def test_to_keeps_the_resources_own_calls_to_that_one(tmp_path: Path) -> None:
    """`tap --replay FILE deploy/web --to deploy/voting`, as a live tap with --to: web's
    outbound calls to voting, not its calls to emoji nor what web serves."""
    web = steps()[0].source
    voting = Endpoint("10.0.0.7", 8080, Workload("emojivoto", "voting", "voting-0"))
    events: list[TapEvent] = []
    events += steps(1, dst=voting, path="/vote")
    events += steps(2, path="/list")  # web → emoji
    events += steps(3, src=voting, dst=web, direction=Direction.INBOUND, path="/in")
    path = tmp_path / "saved.jsonl"
    path.write_text("".join(tap_json_line(ev) + "\n" for ev in events))
    q = TapQuery("deployment", web.workload.namespace, web.workload.deployment,
                 to=("deployment", "emojivoto", "voting"))
    kept = [ev for b in read_all(ReplaySource(path), q) for ev in b.events]
    assert [getattr(ev, "path", None) for ev in kept] == ["/vote", None, None]


def test_an_overlong_line_is_skipped_without_being_held(tmp_path: Path) -> None:
    """A 24 MB line (a file that is not tap's, or a corrupt one) is counted bad and read
    past in pieces: memory stays near the line limit, and the lines after it are read."""
    import tracemalloc

    events = traffic(2)
    path = tmp_path / "saved.jsonl"
    with path.open("wb") as f:
        f.write((tap_json_line(events[0]) + "\n").encode())
        f.write(b"x" * 24_000_000 + b"\n")
        f.write("".join(tap_json_line(ev) + "\n" for ev in events[1:]).encode())
    source = ReplaySource(path)
    tracemalloc.start()
    try:
        batches = read_all(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(len(b.events) for b in batches) == len(events)
    assert source.bad == 1 and "line 2: longer than" in batches[-1].notes[0]
    assert peak < 8_000_000, peak
