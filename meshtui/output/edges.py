"""``edges`` printed once: aligned columns as ``linkerd viz edges`` prints them, or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

from meshtui.model.edges import EdgeRow, edge_columns
from meshtui.output.table import aligned


def edges_table(rows: Sequence[EdgeRow], *, wide: bool = False) -> str:
    if not rows:
        return "No edges found."
    cols = edge_columns(wide=wide)
    return aligned([c.name for c in cols], [[c.text(r) for c in cols] for r in rows])


def edges_json(rows: Sequence[EdgeRow]) -> str:
    return json.dumps([r.to_json() for r in rows], indent=2)
