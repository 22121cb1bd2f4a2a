"""Rows of golden metrics, as ``stat`` shows them, and how they sort.

A :class:`StatRow` is what the client makes of one wire ``StatRow``: plain
numbers with ``None`` where there was no traffic. Sorting puts ``None`` last
in either direction, as a user reading "-" expects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshtui.model.histogram import Histogram
from meshtui.model.ordering import sort_by

KINDS = ("namespace", "deployment", "pod")


@dataclass(frozen=True, slots=True)
class StatRow:
    kind: str  # one of KINDS
    namespace: str
    name: str
    meshed: int
    total: int
    reachable: bool = True
    success: float | None = None  # fraction 0..1
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    tcp_conn: int | None = None
    read_bytes_rate: float | None = None
    write_bytes_rate: float | None = None
    window_s: float = 60.0
    owner: str = ""  # for pods: the deployment they belong to
    # The window's merged latency histogram, when the source was asked for it
    # (the dashboard's distribution chart); not part of a row's identity.
    latency: Histogram | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity across refreshes (for keeping a selection and updating by key)."""
        return (self.kind, self.namespace, self.name)

    @property
    def has_traffic(self) -> bool:
        return self.rps is not None

    def to_json(self) -> dict[str, Any]:
        """Linkerd's ``stat -o json`` field names; ``null`` where there is no traffic."""

        def num(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else v

        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "meshed": f"{self.meshed}/{self.total}",
            "success": num(self.success),
            "rps": num(self.rps),
            "latency_ms_p50": num(self.p50_ms),
            "latency_ms_p95": num(self.p95_ms),
            "latency_ms_p99": num(self.p99_ms),
            "tcp_open_connections": self.tcp_conn,
            "tcp_read_bytes_rate": num(self.read_bytes_rate),
            "tcp_write_bytes_rate": num(self.write_bytes_rate),
        }


# Sortable columns: name shown in headers → how to read the raw value.
COLUMNS: dict[str, Callable[[StatRow], Any]] = {
    "NAMESPACE": lambda r: r.namespace,
    "NAME": lambda r: r.name,
    "MESHED": lambda r: (r.meshed / r.total if r.total else 0.0, r.total),
    "SUCCESS": lambda r: r.success,
    "RPS": lambda r: r.rps,
    "LATENCY_P50": lambda r: r.p50_ms,
    "LATENCY_P95": lambda r: r.p95_ms,
    "LATENCY_P99": lambda r: r.p99_ms,
    "TCP_CONN": lambda r: r.tcp_conn,
    "READ_BYTES/SEC": lambda r: r.read_bytes_rate,
    "WRITE_BYTES/SEC": lambda r: r.write_bytes_rate,
}


def sort_rows(rows: Sequence[StatRow], column: str = "NAME", reverse: bool = False
              ) -> list[StatRow]:
    """Rows sorted by a column's raw value; rows without a value last either way.

    Ties break by namespace and name so the order is stable across refreshes.
    """
    return sort_by(rows, COLUMNS[column], reverse=reverse, tiebreak=by_name)


def by_name(r: StatRow) -> tuple[str, str]:
    return (r.namespace, r.name)
