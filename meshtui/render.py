"""Plain output for scripts and pipes: stat tables, tap lines, JSON.

The same figures the TUI shows, formatted the way ``kubectl`` and
``linkerd viz`` print them: aligned columns under upper-case headers, ``-``
where there is no traffic, and JSON with Linkerd's field names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from meshtui.model.stats import StatRow
from meshtui.tui.cells import columns_for, row_cells


def stat_table(rows: Sequence[StatRow], kind: str, *, all_namespaces: bool,
               wide: bool = False) -> str:
    """Rows as an aligned text table, or a kubectl-style note when there are none."""
    if not rows:
        return "No resources found."
    cols = columns_for(kind, all_namespaces=all_namespaces, wide=wide)
    return aligned(cols, [[c.text for c in row_cells(r, cols)] for r in rows])


def stat_json(rows: Sequence[StatRow]) -> str:
    return json.dumps([r.to_json() for r in rows], indent=2)


def aligned(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest value, three spaces apart, as kubectl prints."""
    table = [header, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("   ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in table)
