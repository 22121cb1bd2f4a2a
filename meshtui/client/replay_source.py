"""A source that answers tap from a saved file (``tap -o json`` lines, or the feed's ``w``).

``tap --replay FILE`` and ``top --replay FILE`` open the views they always open,
on this source: the views read it as they read a live mesh, and need no
special case. The file is read once, in batches, as fast as it parses, each
line kept as msgspec decoded it until a view looks at it
(:mod:`meshtui.model.tap_lines`); what the query asks (resource, --method,
--path, --authority) is applied here, as a proxy would.

The file is untrusted: a line that is not a tap event is skipped and counted,
and the stream ends with one note saying how many and why the first was bad.
Nothing in it is ever taken for markup or escapes (every string is cleaned).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import BinaryIO

from meshtui.client.queries import (
    EdgeQuery,
    HistoryPoint,
    StatQuery,
    StatSnapshot,
    TapBatch,
    TapQuery,
)
from meshtui.client.tap_wire import LineEvents
from meshtui.errors import RuntimeFailure, UsageError
from meshtui.model.edges import EdgeRow
from meshtui.model.sanitize import clean
from meshtui.model.tap import TapEvent, TapMatch
from meshtui.model.tap_json import BadEvent, Reader
from meshtui.model.tap_lines import Line

#: Lines longer than this are skipped unread (a tap event is a few hundred bytes;
#: a header block at the proxy's limit, 60 KiB, fits with room to spare).
MAX_LINE = 1 << 20
BATCH = 4096


class ReplaySource:
    """Tap from a file; the other questions a view may ask have no answer here."""

    history_s = 0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"--replay {clean(str(path))}: no such file")
        self.bad = 0  # lines skipped in the last read
        self.read = 0  # events read in the last read

    @property
    def label(self) -> str:
        return f"replay {clean(self.path.name)}"

    @property
    def tap_label(self) -> str:
        return self.label

    meshed_note = None  # no figures: only requests read back

    async def ready(self, timeout: float) -> None:
        return None

    async def stats(self, query: StatQuery) -> StatSnapshot:
        raise RuntimeFailure("a replayed tap file holds no metrics: stat needs a mesh")

    async def edges(self, query: EdgeQuery) -> list[EdgeRow]:
        raise RuntimeFailure("a replayed tap file holds no metrics: edges needs a mesh")

    async def history(self, query: StatQuery, span_s: int, step_s: int
                      ) -> dict[tuple[str, str, str], list[HistoryPoint]]:
        return {}

    async def close(self) -> None:
        return None

    async def tap(self, query: TapQuery) -> AsyncGenerator[TapBatch, None]:
        keep = _matcher(query)
        reader = Reader()
        # Without a test, lines stay as read until a view looks at them (LineEvents).
        read = reader.read_line if keep else reader.read_step
        self.bad = self.read = 0
        first_bad = ""
        batch: list[TapEvent | Line] = []
        try:
            f = self.path.open("rb")
        except OSError as e:
            raise RuntimeFailure(f"--replay {clean(str(self.path))}: {e.strerror}") from None
        with f:
            for number, line in enumerate(_bounded_lines(f), 1):
                if not line.strip():
                    continue
                try:
                    if len(line) > MAX_LINE:
                        raise BadEvent(f"longer than {MAX_LINE:,} bytes")
                    ev = read(line)
                except BadEvent as e:
                    self.bad += 1
                    if not first_bad:
                        first_bad = f"line {number}: {e}"
                    continue
                self.read += 1
                if keep is None or (isinstance(ev, TapEvent) and keep(ev)):
                    batch.append(ev)
                if len(batch) >= BATCH:
                    yield TapBatch(LineEvents(batch), {}, {})
                    batch = []
                    await asyncio.sleep(0)  # keys and frames between batches
        notes: tuple[str, ...] = ()
        if self.bad:
            notes = (f"{self.bad:,} bad line{'s' if self.bad != 1 else ''} skipped in "
                     f"{clean(self.path.name)} (first at {first_bad})",)
        yield TapBatch(LineEvents(batch), {}, {}, notes=notes)


def _bounded_lines(f: BinaryIO) -> Iterator[bytes]:
    """The file's lines, none held longer than :data:`MAX_LINE` bytes and one more (a
    longer one is read past in pieces, and stands as its first piece: bad, and said so)."""
    readline = f.readline
    limit = MAX_LINE + 1
    while True:
        line = readline(limit)
        if not line:
            return
        if len(line) == limit and not line.endswith(b"\n"):
            while True:
                rest = readline(limit)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def _matcher(q: TapQuery):  # type: ignore[no-untyped-def]
    """The query as a test of one event: its resource on either side, and the request
    match (an event whose request start is not in the file passes the latter); None
    when the query asks for everything (most replays: the test is then skipped)."""
    from meshtui.model.inventory import Workload
    from meshtui.model.tap import Direction, RequestInit, ResponseEnd

    def workload(kind: str, namespace: str | None, name: str | None) -> Workload:
        if kind == "namespace" and name:
            return Workload(name)
        return Workload(namespace or "", name or "" if kind == "deployment" else "",
                        name or "" if kind == "pod" else "")

    def within(want: Workload, w: Workload) -> bool:
        return ((not want.namespace or want.namespace == w.namespace)
                and (not want.deployment or want.deployment == w.deployment)
                and (not want.pod or want.pod == w.pod))

    match = TapMatch(q.method, q.path_prefix, q.authority)
    want = workload(q.kind, q.namespace, q.name)
    # With --to, as a live tap: the resource's own calls (outbound) to that one.
    to = workload(*q.to) if q.to else None

    if not want and not match and to is None:
        return None
    refused: set[object] = set()  # requests whose start did not match: their later steps go too

    def keep(ev: TapEvent) -> bool:
        if to is not None:
            if ev.direction is not Direction.OUTBOUND or not within(want, ev.source.workload) \
                    or not within(to, ev.destination.workload):
                return False
        elif want and not (within(want, ev.source.workload)
                           or within(want, ev.destination.workload)):
            return False
        if not match:
            return True
        key = ev.request_key
        if isinstance(ev, RequestInit):
            if match.matches(ev):
                refused.discard(key)
                return True
            if len(refused) < 1_000_000:
                refused.add(key)
            return False
        if isinstance(ev, ResponseEnd) and key in refused:
            refused.discard(key)
            return False
        return key not in refused

    return keep
