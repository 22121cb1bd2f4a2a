"""The columns of ``stat`` and ``top``: one definition each, read by every view.

A column says how to read the raw value a row sorts on, how to write it as
text, how wide the live table draws it, and whether it is a number. The
live tables, the plain printers and the sort all take their columns from
here, so a column added or renamed here shows everywhere at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import meshtui.model.units as units
from meshtui.model.ordering import sort_by
from meshtui.model.routes import DEFAULT_BY, SORT_KEYS, RouteRow
from meshtui.model.sanitize import raw_text
from meshtui.model.stats import StatRow, by_name


@dataclass(frozen=True)
class StatColumn:
    name: str  # the header, as `linkerd viz stat` prints it
    raw: Callable[[StatRow], Any]  # what the column sorts on
    text: Callable[[StatRow], str]
    width: int = 0  # in the live table; 0: as wide as the longest value
    numeric: bool = True  # numbers align right and sort largest first
    wide_only: bool = False  # shown with -o wide only


def _tcp(r: StatRow) -> str:
    return "-" if r.tcp_conn is None else str(r.tcp_conn)


STAT_COLUMNS: dict[str, StatColumn] = {c.name: c for c in (
    StatColumn("NAMESPACE", lambda r: r.namespace, lambda r: r.namespace, numeric=False),
    StatColumn("NAME", lambda r: r.name, lambda r: r.name, numeric=False),
    StatColumn("MESHED", lambda r: (r.meshed / r.total if r.total else 0.0, r.total),
               lambda r: f"{r.meshed}/{r.total}", 7),
    StatColumn("SUCCESS", lambda r: r.success, lambda r: units.format_success(r.success), 8),
    StatColumn("RPS", lambda r: r.rps, lambda r: units.format_rps(r.rps), 10),
    StatColumn("LATENCY_P50", lambda r: r.p50_ms, lambda r: units.format_latency_ms(r.p50_ms), 11),
    StatColumn("LATENCY_P95", lambda r: r.p95_ms, lambda r: units.format_latency_ms(r.p95_ms), 11),
    StatColumn("LATENCY_P99", lambda r: r.p99_ms, lambda r: units.format_latency_ms(r.p99_ms), 11),
    StatColumn("TCP_CONN", lambda r: r.tcp_conn, _tcp, 8),
    StatColumn("READ_BYTES/SEC", lambda r: r.read_bytes_rate,
               lambda r: units.format_bytes_rate(r.read_bytes_rate), 14, wide_only=True),
    StatColumn("WRITE_BYTES/SEC", lambda r: r.write_bytes_rate,
               lambda r: units.format_bytes_rate(r.write_bytes_rate), 15, wide_only=True),
)}


def stat_columns(kind: str, *, all_namespaces: bool, wide: bool = False) -> list[str]:
    """The headers ``stat`` shows for a kind: NAMESPACE first across namespaces
    (but not for namespaces themselves), the byte rates only when wide."""
    return [name for name, c in STAT_COLUMNS.items()
            if (name != "NAMESPACE" or (all_namespaces and kind != "namespace"))
            and (wide or not c.wide_only)]


def sort_rows(rows: Sequence[StatRow], column: str = "NAME", reverse: bool = False
              ) -> list[StatRow]:
    """Rows sorted by a column's raw value; rows without a value last either way.

    Ties break by namespace and name so the order is stable across refreshes.
    """
    return sort_by(rows, STAT_COLUMNS[column].raw, reverse=reverse, tiebreak=by_name)


@dataclass(frozen=True)
class RouteColumn:
    """A column of ``top``: its text in tables, and its fields in JSON.

    Attributes:
        group: the ``--by`` group it shows (shown only when grouped by it);
            empty for the figures and the direction, shown always.
        json: (field name, value) pairs the column adds to a JSON row, with
            Linkerd's names where Linkerd has the figure.
    """

    name: str
    sort_key: str  # one of meshtui.model.routes.SORT_KEYS
    text: Callable[[RouteRow], str]
    width: int = 0
    numeric: bool = True
    group: str = ""
    wide_only: bool = False
    json: tuple[tuple[str, Callable[[RouteRow], Any]], ...] = ()

    @property
    def raw(self) -> Callable[[RouteRow], Any]:
        return SORT_KEYS[self.sort_key]


def _us(us: float) -> str:
    return units.format_latency_ms(us / 1000)


def _status(r: RouteRow) -> str:
    return str(r.key.status) if r.key.status else "-"


ROUTE_COLUMNS: dict[str, RouteColumn] = {c.name: c for c in (
    RouteColumn("SOURCE", "source", lambda r: r.key.source, numeric=False, group="src",
                json=(("source", lambda r: r.key.source),)),
    RouteColumn("SRC_NS", "source", lambda r: r.key.source_namespace or "-", numeric=False,
                group="src", wide_only=True,
                json=(("sourceNamespace", lambda r: r.key.source_namespace),)),
    RouteColumn("DESTINATION", "destination", lambda r: r.key.destination, numeric=False,
                group="dst", json=(("destination", lambda r: r.key.destination),)),
    RouteColumn("DST_NS", "destination", lambda r: r.key.destination_namespace or "-",
                numeric=False, group="dst", wide_only=True,
                json=(("destinationNamespace", lambda r: r.key.destination_namespace),)),
    RouteColumn("DIRECTION", "direction", lambda r: r.key.direction.short, 9, numeric=False,
                wide_only=True, json=(("direction", lambda r: r.key.direction.value or None),)),
    RouteColumn("METHOD", "method", lambda r: r.key.method, 7, numeric=False, group="method",
                json=(("method", lambda r: r.key.method),)),
    RouteColumn("PATH", "path", lambda r: r.key.path, numeric=False, group="path",
                json=(("path", lambda r: r.key.path),)),
    RouteColumn("STATUS", "status", _status, 6, group="status",
                json=(("status", lambda r: r.key.status or None),)),
    RouteColumn("AUTHORITY", "authority", lambda r: r.key.authority, numeric=False,
                group="authority", json=(("authority", lambda r: r.key.authority),)),
    RouteColumn("COUNT", "count", lambda r: str(r.count), 7,
                json=(("count", lambda r: r.count),)),
    RouteColumn("BEST", "best", lambda r: _us(r.best_us), 7,
                json=(("best_ms", lambda r: r.best_us / 1000),)),
    RouteColumn("WORST", "worst", lambda r: _us(r.worst_us), 7,
                json=(("worst_ms", lambda r: r.worst_us / 1000),)),
    RouteColumn("LAST", "last", lambda r: _us(r.last_us), 7,
                json=(("last_ms", lambda r: r.last_us / 1000),)),
    RouteColumn("SUCCESS", "success", lambda r: units.format_success(r.success_rate), 8,
                json=(("success", lambda r: r.success_rate),)),
)}


def route_columns(by: Sequence[str] = DEFAULT_BY, *, wide: bool = False) -> list[str]:
    """The headers ``top`` shows grouped ``by``: the groups' columns in their fixed
    order, then the figures; namespaces and direction only when wide."""
    return [name for name, c in ROUTE_COLUMNS.items()
            if (not c.group or c.group in by) and (wide or not c.wide_only)]


def route_json(row: RouteRow, by: Sequence[str] = DEFAULT_BY) -> dict[str, Any]:
    """A row as JSON: the fields of every column the wide table shows, so that the
    JSON and the table never disagree on what a row holds."""
    return {field: _original(value(row)) for name in route_columns(by, wide=True)
            for field, value in ROUTE_COLUMNS[name].json}


def _original(v: Any) -> Any:
    """Text as it was sent, not the escapes the table shows: JSON is read by programs,
    and its own escapes (ensure_ascii) keep a terminal safe."""
    return raw_text(v) if isinstance(v, str) else v
