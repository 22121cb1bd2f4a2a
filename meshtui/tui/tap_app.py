"""Entry point of ``meshtui tap`` on a terminal."""

from __future__ import annotations

from meshtui.client.queries import TapQuery
from meshtui.client.source import Source


def describe(q: TapQuery) -> str:
    """The command a user would type for this query, for the title line."""
    short = {"namespace": "ns", "deployment": "deploy", "pod": "po"}
    what = f"{short[q.kind]}/{q.name}" if q.name else short[q.kind]
    parts = [f"tap {what}"]
    if q.namespace and q.kind != "namespace":
        parts.append(f"-n {q.namespace}")
    if q.to:
        kind, _ns, name = q.to
        parts.append(f"--to {short[kind]}/{name}" if name else f"--to {short[kind]}")
    for flag, value in (("--method", q.method), ("--path", q.path_prefix),
                        ("--authority", q.authority)):
        if value:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def run_tap_app(source: Source, query: TapQuery, *, buffer: int, top: bool = False,
                limit: int | None = None, filter_text: str = "",
                by: tuple[str, ...] | None = None) -> int:
    """``meshtui tap`` (or, with ``top``, ``meshtui top``) on a terminal."""
    from meshtui.tui.app import MeshApp, run_app

    title = describe(query)
    if source.label.startswith("replay "):
        title += f" ({source.label})"
    if top:
        title = "top" + title[3:]
    return run_app(MeshApp(source, query, buffer=buffer, title=title, top=top,
                           limit=limit, filter_text=filter_text, by=by))
