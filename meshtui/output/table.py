"""Aligned text tables, as ``kubectl`` prints them."""

from __future__ import annotations


def aligned(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest value, three spaces apart, as kubectl prints."""
    table = [header, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("   ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in table)
