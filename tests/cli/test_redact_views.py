"""A saved tap file that holds secrets (written by a proxy that did not redact them)
shows them withheld in every view: text, wide, JSON, top, HAR, curl, the TUI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from meshkit import MESHTUI

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from tapkit import steps

from meshtui.model.tap import RequestTracker
from meshtui.model.tap_json import Reader, tap_json_line
from meshtui.output.har import REDACTED_COMMENT, curl_line, har_entry

SECRET_VALUES = ("k-123", "Bearer a.b.c", "abc", "sess=1", "pw")


def leaky(tmp_path: Path) -> Path:
    req, rsp, end = steps(1, path="/vote?token=abc&id=3", authority="bob:pw@web:80")
    req = dataclasses.replace(req, headers=(
        ("x-api-key", "k-123"), ("Authorization", "Bearer a.b.c"), ("x-tenant", "acme-9"),
        ("user-agent", 'probe "1"')))
    rsp = dataclasses.replace(rsp, headers=(("set-cookie", "sess=1"),))
    path = tmp_path / "leaky.jsonl"
    path.write_text("".join(tap_json_line(e) + "\n" for e in (req, rsp, end)))
    for secret in SECRET_VALUES:
        assert secret in path.read_text()
    return path


def meshtui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHTUI, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def test_replay_prints_secrets_redacted_in_every_output(tmp_path: Path) -> None:
    path = leaky(tmp_path)
    for output in ("text", "wide", "json"):
        r = meshtui("tap", "--replay", str(path), "-o", output)
        assert r.returncode == 0, r.stderr
        for secret in SECRET_VALUES:
            assert secret not in r.stdout, (output, secret)
        assert "token=<redacted>&id=3" in r.stdout
        assert "<redacted>@web:80" in r.stdout
    wide = meshtui("tap", "--replay", str(path), "-o", "wide").stdout
    assert 'h.x-api-key="<redacted>"' in wide and 'h.user-agent="probe \\"1\\""' in wide
    assert 'h.set-cookie="<redacted>"' in wide
    assert 'h.x-tenant="acme-9"' in wide  # not a default name...
    for how in (["--redact", "x-tenant"], []):  # ...but the user's, by flag or environment
        r = meshtui("tap", "--replay", str(path), "-o", "wide", *how,
                    env={} if how else {"MESHTUI_REDACT": "X-TENANT"})
        assert 'h.x-tenant="<redacted>"' in r.stdout, how
    top = meshtui("top", "--replay", str(path), "-o", "json", "--by", "path,authority")
    assert "abc" not in top.stdout and "pw@" not in top.stdout


def test_a_bad_redact_name_is_bad_usage(tmp_path: Path) -> None:
    r = meshtui("tap", "--replay", str(leaky(tmp_path)), "-o", "json", "--redact", "a b")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_har_and_curl_say_which_values_were_withheld(tmp_path: Path) -> None:
    tracker = RequestTracker()
    reader = Reader()
    for line in leaky(tmp_path).read_text().splitlines():
        req = tracker.observe(reader.read_line(line))
    entry = har_entry(req)
    text = json.dumps(entry)
    for secret in SECRET_VALUES:
        assert secret not in text
    key = next(h for h in entry["request"]["headers"] if h["name"] == "x-api-key")
    assert key == {"name": "x-api-key", "value": "<redacted>", "comment": REDACTED_COMMENT}
    token = next(q for q in entry["request"]["queryString"] if q["name"] == "token")
    assert token["comment"] == REDACTED_COMMENT
    assert {"name": "id", "value": "3"} in entry["request"]["queryString"]
    curl = curl_line(req)
    assert "'x-api-key: <redacted>'" in curl and "k-123" not in curl


async def test_the_tui_detail_pane_shows_withheld_values_and_says_so(tmp_path: Path) -> None:
    from textual.app import App

    from meshtui.output.har import CURL_REDACTED_NOTE
    from meshtui.tui.tap_screen import RequestDetail

    tracker = RequestTracker()
    reader = Reader()
    for line in leaky(tmp_path).read_text().splitlines():
        req = tracker.observe(reader.read_line(line))
    app: App[None] = App()
    async with app.run_test(size=(160, 40)) as pilot:
        await app.push_screen(RequestDetail(req))
        await pilot.pause(0.1)
        shown = str(app.screen.query_one("#detail").render())
    assert "x-api-key: <redacted>" in shown and "set-cookie: <redacted>" in shown
    assert "token=<redacted>&id=3" in shown and CURL_REDACTED_NOTE in shown
    for secret in SECRET_VALUES:
        assert secret not in shown


def test_what_a_proxy_that_does_not_redact_sends_is_redacted_by_the_client() -> None:
    """Wire events as an old or foreign proxy sends them (nothing withheld): the
    converted events, and the feed's own fast reads of path and headers, withhold."""
    from meshtui.client.convert import tap_event
    from meshtui.client.tap_wire import StepTracker
    from meshtui.proxy.tap_hub import TapHub
    from meshtui.proxy.telemetry import Direction, Identity, Telemetry

    hub = TapHub(lambda: 0.0, show_secrets=True)
    tel = Telemetry(Identity("ns", "web", "web-0"), hub=hub)
    sub = hub.subscribe()
    obs = tel.request(Direction.INBOUND, ("10.0.0.9", 4000), ("10.0.0.1", 80), 1, "GET",
                      "http", "bob:pw@web:80", "/vote?api_key=abc&id=3",
                      [(b"host", b"web"), (b"X-Api-Key", b"k-123")])
    obs.response_start(200, [(b"set-cookie", b"sess=1")])
    obs.response_end(0)
    wire = list(hub.take_batch(sub).events)
    assert wire[0].request_init.path == "/vote?api_key=abc&id=3"  # the proxy let it through
    req = tap_event(wire[0])
    assert req.path == "/vote?api_key=<redacted>&id=3"  # type: ignore[union-attr]
    assert req.authority == "<redacted>@web:80"  # type: ignore[union-attr]
    assert ("X-Api-Key", "<redacted>") in req.headers  # type: ignore[union-attr]
    recs, _ = StepTracker().join_wire(wire[:1])
    steps = recs[0]
    assert steps.path == "/vote?api_key=<redacted>&id=3"
    assert steps.authority == "<redacted>@web:80"
    assert steps.header_values("x-api-key") == ["<redacted>"]
