"""Edges: who calls whom, with the figures of each call, as ``edges`` shows them.

The columns are Linkerd's (``SRC DST SRC_NS DST_NS SECURED``) followed by the
golden metrics of the calls; SECURED is "√" when every request of the edge in the
window went over mutual TLS (whichever source counted them).
Every view (the printer, the JSON, the terminal graph) reads them from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import meshtui.model.units as units
from meshtui.model.sanitize import raw_text

SECURED_MARK = "√"


@dataclass(frozen=True, slots=True)
class EdgeRow:
    kind: str  # namespace | deployment | pod, of both ends
    src_namespace: str
    src: str
    dst_namespace: str
    dst: str
    secured: bool = False
    success: float | None = None  # fraction 0..1
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def src_key(self) -> tuple[str, str]:
        return (self.src_namespace, self.src)

    @property
    def dst_key(self) -> tuple[str, str]:
        return (self.dst_namespace, self.dst)

    def to_json(self) -> dict[str, Any]:
        """Linkerd's ``edges -o json`` fields, then the figures (``null``: no requests)."""

        def num(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else v

        return {
            # The names as they are, not as the table escapes them (see raw_text).
            "src": raw_text(self.src),
            "src_namespace": raw_text(self.src_namespace),
            "dst": raw_text(self.dst),
            "dst_namespace": raw_text(self.dst_namespace),
            "secured": self.secured,
            "no_tls_reason": "" if self.secured else "not provided by remote",
            "success": num(self.success),
            "rps": num(self.rps),
            "latency_ms_p50": num(self.p50_ms),
            "latency_ms_p95": num(self.p95_ms),
            "latency_ms_p99": num(self.p99_ms),
        }


@dataclass(frozen=True)
class EdgeColumn:
    name: str
    text: Callable[[EdgeRow], str]
    wide_only: bool = False


EDGE_COLUMNS: dict[str, EdgeColumn] = {c.name: c for c in (
    EdgeColumn("SRC", lambda e: e.src),
    EdgeColumn("DST", lambda e: e.dst),
    EdgeColumn("SRC_NS", lambda e: e.src_namespace),
    EdgeColumn("DST_NS", lambda e: e.dst_namespace),
    EdgeColumn("SECURED", lambda e: SECURED_MARK if e.secured else ""),
    EdgeColumn("SUCCESS", lambda e: units.format_success(e.success)),
    EdgeColumn("RPS", lambda e: units.format_rps(e.rps)),
    EdgeColumn("LATENCY_P50", lambda e: units.format_latency_ms(e.p50_ms), wide_only=True),
    EdgeColumn("LATENCY_P95", lambda e: units.format_latency_ms(e.p95_ms), wide_only=True),
    EdgeColumn("LATENCY_P99", lambda e: units.format_latency_ms(e.p99_ms)),
)}


def edge_columns(*, wide: bool = False) -> list[EdgeColumn]:
    return [c for c in EDGE_COLUMNS.values() if wide or not c.wide_only]
