"""Tap events as plain lines and as JSON, the way ``linkerd viz tap`` prints them.

Every string here was cleaned when it entered the client, so printing it
cannot move the cursor or change colours on the user's terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from meshtui.client.queries import TapQuery
from meshtui.client.source import Source
from meshtui.model.bodies import BodyClamp, body_summary
from meshtui.model.feed_filter import FeedFilter
from meshtui.model.inventory import Workload
from meshtui.model.tap import Headers, RequestInit, ResponseEnd, ResponseInit, TapEvent
from meshtui.model.tap_json import tap_json_line
from meshtui.model.tap_sieve import TapSieve
from meshtui.model.units import format_latency_us

_GRPC_NAMES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
               "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
               "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
               "Unauthenticated"]


def _res(prefix: str, w: Workload) -> str:
    if w.deployment:
        res = f"deploy/{w.deployment}"
    elif w.pod:
        res = f"pod/{w.pod}"
    else:
        return ""
    return f" {prefix}_res={res} {prefix}_ns={w.namespace}"


def tap_line(ev: TapEvent, wide: bool = False) -> str:
    """``req id=3:17 proxy=in src=… dst=… tls=false :method=GET :authority=… :path=…``."""
    head = (f"{ev.KIND} id={ev.stream} proxy={ev.direction.short} src={ev.source} "
            f"dst={ev.destination} tls={'true' if ev.tls else 'false'}")
    if isinstance(ev, RequestInit):
        tail = f" :method={ev.method} :authority={ev.authority} :path={ev.path}"
    elif isinstance(ev, ResponseInit):
        tail = f" :status={ev.status} latency={format_latency_us(ev.latency_us)}"
    elif isinstance(ev, ResponseEnd):
        if ev.reset_code is not None:
            tail = f" reset-error={ev.reset_code}"
        elif ev.grpc_status is not None:
            name = (_GRPC_NAMES[ev.grpc_status] if 0 <= ev.grpc_status < len(_GRPC_NAMES)
                    else str(ev.grpc_status))
            tail = f" grpc-status={name}"
        else:
            tail = ""
        tail += (f" duration={format_latency_us(ev.duration_us)}"
                 f" response-length={ev.response_bytes}B")
        grpc = ev.grpc_status is not None
        if ev.request_body is not None:
            tail += f" request-body={body_summary(ev.request_body, grpc)}"
        if ev.response_body is not None:
            tail += f" response-body={body_summary(ev.response_body, grpc)}"
    else:  # pragma: no cover - every kind is above
        tail = ""
    if wide:
        tail += _res("src", ev.source.workload) + _res("dst", ev.destination.workload)
        if isinstance(ev, ResponseEnd):
            tail += _wide_headers(ev.trailers)
        elif isinstance(ev, RequestInit | ResponseInit):
            tail += _wide_headers(ev.headers)
    return head + tail


def _wide_headers(hs: Headers) -> str:
    """`` h.user-agent="curl/8" h.authorization="<redacted>"``: the step's headers
    (a request's, a response's, or trailers), values quoted with ``"`` and ``\\``
    escaped, so a value cannot pass for another field."""
    return "".join(
        f' h.{n}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for n, v in hs if not n.startswith(":"))


async def print_tap(source: Source, q: TapQuery, output: str, limit: int | None,
                    flt: FeedFilter | None = None) -> int:
    """Prints one line (or JSON object) per event until ``limit`` events or Ctrl-C;
    with ``flt``, only the events of the requests it passes (see TapSieve)."""
    out = sys.stdout
    n = 0
    sieve = TapSieve(flt) if flt else None
    clamp = BodyClamp(q.capture_body)
    async for batch in source.tap(q):
        events = batch.events if sieve is None else sieve.feed(list(batch.events))
        note = clamp.check(events)
        if note:
            print(f"meshtui: {note}", file=sys.stderr)
        if limit is not None:
            events = events[: max(0, limit - n)]
        if output == "json":
            lines = [tap_json_line(e) for e in events]
        else:
            lines = [tap_line(e, wide=output == "wide") for e in events]
        if lines:
            out.write("\n".join(lines) + "\n")
            out.flush()
        n += len(events)
        for who, lost in batch.drops.items():
            print(f"meshtui: {lost} events lost at {who} (tap is lossy under load)",
                  file=sys.stderr)
        for who, why in batch.errors.items():
            print(f"meshtui: tap of {who} broke: {why}", file=sys.stderr)
        for note in batch.notes:
            print(f"meshtui: {note}", file=sys.stderr)
        if limit is not None and n >= limit:
            return 0
    return 0


def write_jsonl(path: str, events: Iterable[TapEvent]) -> int:
    """Writes ``tap -o json`` lines (what --replay reads); how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(tap_json_line(ev) + "\n")
            n += 1
    return n
