"""A table as a file: CSV or JSON, chosen by the file name's extension (ctrl+s)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence

# A spreadsheet runs a cell that starts so as a formula; the text came from traffic
# and names anyone can choose, so such a cell is written with a quote mark first.
_FORMULA_STARTS = ("=", "+", "@", "\t", "\r")


class TableFormatError(ValueError):
    """The file name asks for a format this writer does not make."""


def write_table(path: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Writes the rows as they are shown; the format written (``csv`` or ``json``).

    JSON is a list of objects keyed by the column headers, values as shown.
    """
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext == "json":
        text = json.dumps([dict(zip(header, row, strict=True)) for row in rows],
                          ensure_ascii=False, indent=2)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        return "json"
    if ext == "csv":
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows([("'" + v if v.startswith(_FORMULA_STARTS) else v) for v in row]
                        for row in rows)
        return "csv"
    raise TableFormatError("name the file .csv or .json")
