"""What a view asks a source for, and what it gets back.

Plain values, with no wire types and no query language in them: the same
:class:`StatQuery` is answered by the controller over gRPC and by a
Prometheus over PromQL, and the UI and the printers read the answers the same
way whichever source made them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshtui.model.stats import StatRow
from meshtui.model.tap import TapEvent

# (kind, namespace, name) of a --from / --to resource.
ResourceRef = tuple[str, str | None, str | None]


@dataclass(frozen=True)
class StatQuery:
    kind: str  # namespace | deployment | pod
    namespace: str | None = None  # None: every namespace
    name: str | None = None
    window_s: int = 60
    from_: ResourceRef | None = None
    to: ResourceRef | None = None
    owner: str | None = None  # pods only: those of this deployment
    # Wall-clock seconds the window ends at; None: now. Sources that keep no
    # history that far back refuse the query (SourceRangeError).
    until: float | None = None


@dataclass(frozen=True)
class EdgeQuery:
    """Edges from the resources of a kind (in a namespace, or all) to any destination."""

    kind: str  # namespace | deployment | pod
    namespace: str | None = None  # None: every namespace
    window_s: int = 60
    until: float | None = None


@dataclass(frozen=True)
class StatSnapshot:
    rows: tuple[StatRow, ...]
    taken_at: float = field(default_factory=time.time)  # wall clock, seconds
    proxies_reachable: int = 0
    proxies_total: int = 0
    last_scrape: float | None = None  # wall clock of the newest scrape behind the rows

    @property
    def missing(self) -> tuple[str, ...]:
        """``namespace/pod`` of every proxy the rows' figures leave out (not answering)."""
        return tuple(sorted({f"{r.namespace or r.name}/{pod}" for r in self.rows
                             for pod in r.missing}))

    def partial_note(self) -> str | None:
        """One line saying what the figures leave out; None when every proxy answered."""
        missing = self.missing
        if not missing:
            return None
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more"
                                          if len(missing) > 5 else "")
        return (f"partial answer: {len(missing)} prox{'y' if len(missing) == 1 else 'ies'} "
                f"not answering ({shown}); the figures are those of the others")


@dataclass(frozen=True)
class HistoryPoint:
    at: float  # wall clock, seconds
    rps: float | None
    success: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class TapQuery:
    kind: str
    namespace: str | None
    name: str | None
    to: ResourceRef | None = None
    method: str = ""
    path_prefix: str = ""
    authority: str = ""
    max_rps: float = 100.0
    capture_body: int = 0  # bytes of each body the proxies copy (0: none)


@dataclass
class TapBatch:
    """What one wire batch brings the UI: events, and what was lost where."""

    events: Sequence[TapEvent]  # lazy: WireEvents, a replay's LineEvents (client.tap_wire)
    drops: dict[str, int]  # "namespace/pod" → events lost since the last batch
    errors: dict[str, str]  # "namespace/pod" → why its stream broke
    rate_limited: int = 0
    shed: int = 0  # events this client received but had no time to show
    notes: tuple[str, ...] = ()  # one line each for the user (a replay's bad lines)
