"""``stat`` printed once: the figures the live table shows, formatted the way
``kubectl`` and ``linkerd viz`` print them: aligned columns under upper-case
headers, ``-`` where there is no traffic, and JSON with Linkerd's field names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from meshtui.model.columns import STAT_COLUMNS, stat_columns
from meshtui.model.stats import StatRow
from meshtui.output.table import aligned


def stat_table(rows: Sequence[StatRow], kind: str, *, all_namespaces: bool,
               wide: bool = False) -> str:
    """Rows as an aligned text table, or a kubectl-style note when there are none."""
    if not rows:
        return "No resources found."
    cols = [STAT_COLUMNS[n] for n in stat_columns(kind, all_namespaces=all_namespaces,
                                                  wide=wide)]
    return aligned([c.name for c in cols], [[c.text(r) for c in cols] for r in rows])


def stat_json(rows: Sequence[StatRow]) -> str:
    return json.dumps([r.to_json() for r in rows], indent=2)
