"""The live tap feed: every request step as one line, at any rate.

Intake runs in a worker that joins the steps of each request in a bounded
tracker and appends each batch to the feed's ring (which never redraws by
itself); the feed draws at its own frame rate. Events from the controller
stay wire events in the ring: only the lines drawn, the requests a filter
looks at and the one opened are converted (:mod:`meshtui.client.tap_wire`).
The status line counts what arrived, what the proxies lost (per source) and
what ``--max-rps`` skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from meshtui.client.budget import Budget
from meshtui.client.queries import TapBatch, TapQuery
from meshtui.client.source import Source
from meshtui.client.tap_wire import Steps, StepTracker, body_limit
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.bodies import BodyClamp, body_lines, is_grpc
from meshtui.model.feed_filter import FeedFilter, FilterError
from meshtui.model.redact import REDACTED
from meshtui.model.tap import Request, RequestInit, ResponseEnd, ResponseInit, TapEvent
from meshtui.model.units import format_bytes, format_latency_us
from meshtui.output.har import CURL_REDACTED_NOTE, curl_line, write_har
from meshtui.output.tap import write_jsonl
from meshtui.tui.feed import FeedView
from meshtui.tui.save_prompt import SavePrompt


def status_style(status: int | None) -> str:
    if status is None:
        return ""
    if status >= 500:
        return "bold red"
    if status >= 400:
        return "yellow"
    if status >= 300:
        return "cyan"
    return "green"


def line_parts(steps: Steps, slot: int) -> list[tuple[str, str]]:
    """The line of step ``slot`` of a request as (text, style) parts: the kind, who
    to whom, and what happened, coloured by the request's status."""
    ev = steps.event(slot)
    if ev is None:
        return []
    style = status_style(steps.status)
    # Spaces end spans rather than start them: SVG screenshots drop leading ones.
    parts = [(f"{ev.KIND} ", f"bold {style}".strip()), (f"{ev.stream!s:<8} ", "dim"),
             (f"{ev.direction.short:<4}", "dim"),
             (f"{ev.source.label} → {ev.destination.label}  ", "")]
    if isinstance(ev, RequestInit):
        parts += [(f"{ev.method} ", "bold"), (ev.authority, "dim"), (ev.path, "")]
    elif isinstance(ev, ResponseInit):
        parts += [(f":status={ev.status} ", style),
                  (f"latency={format_latency_us(ev.latency_us)}  ", "")]
        req = steps.request()
        if req.path is not None:
            parts.append((f"{req.method} {req.path}", "dim"))
    elif isinstance(ev, ResponseEnd):
        if ev.reset_code is not None:
            parts.append((f"reset={ev.reset_code} ", "bold red"))
        elif ev.grpc_status is not None:
            parts.append((f"grpc-status={ev.grpc_status} ",
                          "green" if ev.grpc_status == 0 else "bold red"))
        parts.append((f"duration={format_latency_us(ev.duration_us)} "
                      f"response-length={ev.response_bytes}B", ""))
    return parts


def render_item(steps: Steps, slot: int) -> Text:
    """One feed line as Rich text (the feed itself draws :func:`line_parts` directly)."""
    return Text.assemble(*line_parts(steps, slot), no_wrap=True)


class RequestDetail(ModalScreen[None]):
    """Everything tap knows about one request."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close"),
                Binding("c", "copy_curl", "Copy as curl")]

    def __init__(self, req: Request) -> None:
        super().__init__()
        self.req = req
        self.curl = curl_line(req)

    def action_copy_curl(self) -> None:
        """The curl line to the clipboard, where the terminal lets an app set it (OSC 52)."""
        if self.curl:
            self.app.copy_to_clipboard(self.curl)
            self.notify("curl line copied (where the terminal allows)")

    def compose(self) -> ComposeResult:
        yield Static(self._text(), id="detail")

    def _text(self) -> Text:
        r = self.req
        t = Text()

        def row(label: str, value: str, style: str = "") -> None:
            t.append(f"{label:<14}", style="bold")
            t.append(value + "\n", style=style)

        row("request", f"{r.method or '?'} {r.authority or ''}{r.path or ''}")
        row("source", f"{r.source} ({r.source.label})")
        row("destination", f"{r.destination} ({r.destination.label})")
        row("proxy", f"{r.direction.value or '?'}  id={r.stream}  tls={str(r.tls).lower()}")
        if r.response is not None:
            row("status", str(r.response.status), status_style(r.response.status))
            row("latency", format_latency_us(r.response.latency_us) + " (to the response's head)")
        if r.end is not None:
            row("duration", format_latency_us(r.end.duration_us) + " (head to end)")
            row("total", format_latency_us(r.end.since_request_us))
            row("bytes", format_bytes(r.end.response_bytes))
            if r.end.grpc_status is not None:
                row("grpc-status", str(r.end.grpc_status))
            if r.end.reset_code is not None:
                row("reset", str(r.end.reset_code), "bold red")
        for title, headers in (("request headers", r.init.headers if r.init else ()),
                               ("response headers", r.response.headers if r.response else ()),
                               ("trailers", r.end.trailers if r.end else ())):
            if headers:
                t.append(f"\n{title}\n", style="bold underline")
                for name, value in headers:
                    t.append(f"  {name}: ", style="cyan")
                    t.append(value + "\n")
        grpc = is_grpc(_content_type(r))
        for title, body in (("request body", r.end.request_body if r.end else None),
                            ("response body", r.end.response_body if r.end else None)):
            if body is not None:
                t.append(f"\n{title}\n", style="bold underline")
                for line in body_lines(body, grpc):
                    t.append(f"  {line}\n")
        if self.curl:
            t.append("\nas curl (c copies)\n", style="bold underline")
            t.append(self.curl + "\n")
            if REDACTED in self.curl:
                t.append(CURL_REDACTED_NOTE + "\n", style="dim")
        t.append("\nEscape closes", style="dim")
        return t


class TapScreen(Screen[None]):
    BINDINGS = [
        Binding("space", "pause", "Pause"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("end", "follow", "Follow"),
        Binding("w", "write_jsonl", "Write JSONL"),
        Binding("e", "export_har", "Export HAR"),
    ]

    def __init__(self, source: Source, query: TapQuery, *, buffer: int = 100_000,
                 title: str = "", limit: int | None = None, filter_text: str = "") -> None:
        super().__init__()
        self.source = source
        self.tap_query = query
        self.buffer = buffer
        self.limit = limit  # --limit: take this many events, then stop and keep them
        self.title_text = title or "tap"
        self.tracker = StepTracker(capacity=min(buffer, 50_000), horizon=buffer)
        self.received = 0
        self.lost: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.rate_limited = 0
        self.shed = 0
        self.state = "connecting"
        self._rate: deque[tuple[float, int]] = deque(maxlen=20)
        self.filter_text = filter_text  # what the filter shows (applied on mount)
        self.notes: list[str] = []  # what the source said once (a replay's bad lines)
        # Until the first captured body shows what the proxies copy (it may be less
        # than asked): then it is said once, as the CLI does.
        self._clamp: BodyClamp | None = BodyClamp(query.capture_body) \
            if query.capture_body else None

    def compose(self) -> ComposeResult:
        yield Static(Text(f" {self.title_text}", style="bold"), id="crumbs")
        yield FeedView(line_parts, capacity=self.buffer, version=_version, id="feed")
        yield Input(placeholder="filter: GET and (status>=500 or latency>10ms) "
                    "and not h.user-agent~curl",
                    id="filter")
        yield Static("", id="status")
        yield Footer()

    @property
    def feed(self) -> FeedView[Steps]:
        return self.query_one(FeedView)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        if self.filter_text:
            self._set_filter(FeedFilter.parse(self.filter_text))
        self.feed.focus()
        self.intake()
        self.set_interval(0.5, self._update_status)

    @work(exclusive=True, group="tap-intake", exit_on_error=False)
    async def intake(self) -> None:
        try:
            async with contextlib.aclosing(self.source.tap(self.tap_query)) as stream:
                async for batch in stream:
                    self.state = "streaming"
                    if self._take(batch):
                        self.state = f"stopped at --limit {self.limit:,}"
                        break
                    await asyncio.sleep(0)  # let keys and frames in between batches
                else:
                    self.state = "stream ended"
        except (RuntimeFailure, UsageError) as e:
            self.state = f"error: {e}"
        self._update_status()

    def _take(self, batch: TapBatch) -> bool:
        """Adds one batch to the feed; True once --limit events have been taken."""
        events = batch.events
        if self._clamp is not None:
            limit = body_limit(events)
            if limit is not None:
                note = self._clamp.saw(limit)
                if note:
                    self.notes.append(note)
                    self.notify(note, severity="warning")
                self._clamp = None
        wire = getattr(events, "wire", None)  # WireEvents: still as they came
        if wire is not None:
            t0 = Budget.clock()
            recs, slots = self.tracker.join_wire(wire)
            events.spend(Budget.clock() - t0)  # type: ignore[attr-defined]
        else:
            recs, slots = self.tracker.join_events(events)
        full = False
        if self.limit is not None and self.received + len(recs) >= self.limit:
            keep = self.limit - self.received
            recs, slots, full = recs[:keep], slots[:keep], True
        self.feed.add(recs, slots)
        self.received += len(recs)
        for who, n in batch.drops.items():
            self.lost[who] = self.lost.get(who, 0) + n
        self.errors.update(batch.errors)
        self.rate_limited += batch.rate_limited
        self.shed += batch.shed
        self.notes.extend(batch.notes)
        return full

    def _update_status(self) -> None:
        now = time.monotonic()
        self._rate.append((now, self.received))
        t0, n0 = self._rate[0]
        rate = (self.received - n0) / (now - t0) if now > t0 else 0.0
        feed = self.feed
        parts = [f" {rate:,.0f} events/s" if self.state == "streaming" else f" {self.state}",
                 f"{self.received:,} received", f"{feed.shown:,} shown"]
        if self.filter_text:
            parts.append(f"filter: {self.filter_text}")
        if feed.paused:
            parts.append(f"PAUSED ({feed.pending:,} new)")
        elif not feed.following:
            parts.append(f"{feed.pending:,} new (End follows)")
        lost = sum(self.lost.values())
        if lost:
            by_source = sorted(self.lost.items(), key=lambda kv: -kv[1])
            shown_sources = ", ".join(f"{who} {n:,}" for who, n in by_source[:3])
            more = f", +{len(by_source) - 3} more" if len(by_source) > 3 else ""
            parts.append(f"lost {lost:,}: {shown_sources}{more}")
        if self.rate_limited:
            parts.append(f"skipped {self.rate_limited:,} by max-rps")
        if self.shed:
            parts.append(f"too fast to show: {self.shed:,}")
        parts.extend(self.notes[-1:])
        rps = self.tap_query.max_rps
        parts.append(f"max-rps {rps:g}" if rps else "max-rps unlimited")
        if self.tap_query.capture_body:
            parts.append(f"capturing bodies (first {self.tap_query.capture_body:,} bytes)")
        parts.append(f"from {self.source.tap_label}")
        style = "bold yellow" if self.state.startswith("error") else ""
        self.query_one("#status", Static).update(Text("  │  ".join(parts), style=style))

    def action_pause(self) -> None:
        self.feed.toggle_pause()
        self._update_status()

    def action_follow(self) -> None:
        self.feed.action_follow()
        self._update_status()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.feed.focus()
            return
        if self.filter_text:
            self.filter_text = ""
            self.feed.set_filter(None)
            self._update_status()

    @on(Input.Submitted, "#filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        try:
            flt = FeedFilter.parse(text)
        except FilterError as e:
            # The box keeps the text; the cursor goes to the fault.
            event.input.cursor_position = e.position
            self.notify(f"{e} (at column {e.position + 1})", severity="error", timeout=4)
            return
        event.input.display = False
        self._set_filter(flt)
        self.feed.focus()
        self._update_status()

    def _set_filter(self, flt: FeedFilter) -> None:
        self.filter_text = str(flt)
        test = flt.test
        self.feed.set_filter((lambda steps: steps.passes(test)) if flt else None)

    # ---- keeping what the feed shows -------------------------------------------------

    def _shown_events(self) -> list[TapEvent]:
        out = []
        for steps, slot in self.feed.shown_items():
            ev = steps.event(slot)
            if ev is not None:
                out.append(ev)
        return out

    def _shown_requests(self) -> list[Request]:
        seen: dict[int, Steps] = {}
        for steps, _slot in self.feed.shown_items():
            seen.setdefault(id(steps), steps)
        return [s.request() for s in seen.values()]

    def _ask_and_write(self, what: str, ext: str, write: Callable[[str], int]) -> None:
        default = time.strftime(f"tap-%Y%m%d-%H%M%S.{ext}")

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                n = write(path)
            except OSError as e:
                self.notify(f"could not write {path}: {e.strerror}", severity="error",
                            markup=False)
                return
            except (ValueError, OverflowError) as e:
                # What a replayed file held and no format can carry: the feed goes on.
                self.notify(f"could not write {path}: {e}", severity="error", markup=False)
                return
            self.notify(f"wrote {n:,} {what} to {os.path.abspath(path)}", markup=False)

        self.app.push_screen(SavePrompt(f"Write {what} shown to:", default), done)

    def action_write_jsonl(self) -> None:
        """What the feed shows (the filter's lines, or the whole ring) as tap -o json."""
        self._ask_and_write("events", "jsonl",
                            lambda path: write_jsonl(path, self._shown_events()))

    def action_export_har(self) -> None:
        self._ask_and_write("requests (HAR)", "har",
                            lambda path: write_har(path, self._shown_requests()))

    def on_feed_view_selected(self, event: FeedView.Selected) -> None:
        steps: Steps = event.item  # type: ignore[assignment]
        self.app.push_screen(RequestDetail(steps.request()))


def _content_type(r: Request) -> str | None:
    for hs in (r.init.headers if r.init else (), r.response.headers if r.response else ()):
        for name, value in hs:
            if name.lower() == "content-type":
                return value
    return None


def _version(steps: Steps) -> int:
    """A line changes when its request gains a step (its colour comes from the response)."""
    return steps.known
