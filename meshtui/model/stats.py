"""Rows of golden metrics, as ``stat`` shows them, and how they sort.

A :class:`StatRow` is what the client makes of one wire ``StatRow``: plain
numbers with ``None`` where there was no traffic, and names cleaned for
display (a name that cleaning changed keeps its raw form apart, for
queries). Sorting puts ``None`` last in either direction, as a user reading
"-" expects (the columns and their sort are in :mod:`meshtui.model.columns`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from meshtui.model.histogram import Histogram
from meshtui.model.sanitize import raw_text

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
    # The names as the source knows them, where they differ from the names above
    # (cleaned for display: a name holding control characters). A query for the
    # resource must use these; the query_* properties give whichever applies.
    raw_namespace: str | None = field(default=None, repr=False)
    raw_name: str | None = field(default=None, repr=False)
    raw_owner: str | None = field(default=None, repr=False)
    # Pods whose proxy did not answer: the figures are those of the others.
    missing: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def query_namespace(self) -> str:
        """The namespace to ask the source for (not the one shown)."""
        return self.namespace if self.raw_namespace is None else self.raw_namespace

    @property
    def query_name(self) -> str:
        """The name to ask the source for (not the one shown)."""
        return self.name if self.raw_name is None else self.raw_name

    @property
    def query_owner(self) -> str:
        """The deployment to ask the source for (not the one shown)."""
        return self.owner if self.raw_owner is None else self.raw_owner

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
            # The names as they are, not as the table escapes them (see raw_text).
            "namespace": raw_text(self.namespace),
            "kind": self.kind,
            "name": raw_text(self.name),
            "meshed": f"{self.meshed}/{self.total}",
            "success": num(self.success),
            "rps": num(self.rps),
            "latency_ms_p50": num(self.p50_ms),
            "latency_ms_p95": num(self.p95_ms),
            "latency_ms_p99": num(self.p99_ms),
            "tcp_open_connections": self.tcp_conn,
            "tcp_read_bytes_rate": num(self.read_bytes_rate),
            "tcp_write_bytes_rate": num(self.write_bytes_rate),
            "partial": self.partial,
            "missing_pods": [raw_text(p) for p in self.missing],
        }


def by_name(r: StatRow) -> tuple[str, str]:
    return (r.namespace, r.name)
