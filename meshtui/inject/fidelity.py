"""Keeping a document that inject writes anew faithful to the one it read.

ruamel.yaml's round trip keeps comments, key order and quotes, but it writes
some things its own way: one space after a colon (``name:   web`` becomes
``name: web``), a null as nothing (``creationTimestamp: null``, which every
``kubectl create --dry-run -o yaml`` writes, becomes ``creationTimestamp:``),
and one indentation for every sequence. The data is the same; the bytes are
not, and a reviewer diffing the injected file would see lines inject never
meant to touch.

So after a document is written anew, each line that differs from the line it
replaced only in such spelling gets its original text back — and the result
is kept only if it still parses to exactly the data that was written
(:func:`restore`).

And before a document is changed at all, :func:`loaded_faithfully` checks
that the round trip keeps its data: ruamel.yaml loses a few things YAML allows and no
manifest needs (a collection that holds itself through an alias comes back
as ``[null]``), and such a document is better left alone than altered.
"""

from __future__ import annotations

import datetime
import difflib
import io
import re
from collections.abc import Set as AbstractSet
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

# A trailing null spelled out (``key: null``, ``- ~``), before any comment.
_NULL = re.compile(r"(:|^-|\s-)\s+(~|null|Null|NULL)(?=\s*(#.*)?$)")


def _squeeze(line: str) -> str:
    return "".join(line.split())


def _same_but_spelling(original: str, written: str) -> bool:
    """Whether two lines differ only in spaces, or in a null written out."""
    if _squeeze(original) == _squeeze(written):
        return True
    return _squeeze(_NULL.sub(r"\1", original)) == _squeeze(written)


def _scalar(node: Any) -> Any:
    """A scalar as (kind, value), the same whichever loader built it: the
    round-trip loader's ``ScalarInt``, ``ScalarBoolean``, ``TimeStamp`` and
    string subclasses compare as the safe loader's plain values."""
    if node is None:
        return ("null",)
    if isinstance(node, (bool, ScalarBoolean)):
        return ("bool", bool(node))
    if isinstance(node, int):
        return ("int", int(node))
    if isinstance(node, float):
        return ("float", repr(float(node)))  # so that .nan equals .nan
    if isinstance(node, str):
        return ("str", str(node))
    if isinstance(node, (datetime.date, datetime.datetime)):
        return ("time", node.isoformat())
    if isinstance(node, bytes):
        return ("bytes", bytes(node))
    if isinstance(node, AbstractSet):
        return ("set", sorted(repr(_scalar(x)) for x in node))
    return (type(node).__name__, repr(node))


def _plain(node: Any, tags: bool, ordered: bool = True, path: tuple[int, ...] = ()) -> Any:
    """Data for an exact comparison: mappings as their items (in order, when
    asked), tags kept when asked, a collection met again inside itself as a
    marker of how far up it is."""
    if isinstance(node, (dict, list)):
        if id(node) in path:
            return ("cycle", len(path) - path.index(id(node)))
        path = (*path, id(node))
    tag = getattr(getattr(node, "tag", None), "value", None) if tags else None
    if isinstance(node, dict):
        items = [(_plain(k, tags, ordered, path), _plain(v, tags, ordered, path))
                 for k, v in node.items()]
        # Keys merged in with `<<` come first from one loader, last from the other.
        out: Any = ("map", items if ordered else sorted(items, key=repr))
    elif isinstance(node, (list, tuple)):  # a tuple: a sequence used as a key
        out = ("seq", [_plain(v, tags, ordered, path) for v in node])
    elif hasattr(node, "value") and hasattr(node, "tag"):  # a tagged scalar
        out = ("tagged", str(node.value)) if tags else ("str", str(node.value))
    else:
        out = _scalar(node)
    return (tag, out) if tag else out


class _Incomparable:
    """Stands for a document a loader cannot read."""


def _data(text: str, typ: str = "safe", ordered: bool = True) -> Any:
    """The document's data (tags too, from the round-trip loader), or
    ``_Incomparable`` when the loader cannot read it."""
    try:
        return _plain(YAML(typ=typ, pure=True).load(io.StringIO(text)), tags=typ == "rt",
                      ordered=ordered)
    except (YAMLError, ValueError, TypeError, RecursionError):
        return _Incomparable


def same_data(a: str, b: str) -> bool:
    """Whether two documents hold the same data, in the same order, with the same tags.

    The safe loader first (it builds what an alias points to faithfully); for
    tags it does not know, the round-trip loader, which keeps them.
    """
    da, db = _data(a), _data(b)
    if da is _Incomparable or db is _Incomparable:
        da, db = _data(a, "rt"), _data(b, "rt")
    return da is not _Incomparable and da == db


def loaded_faithfully(text: str, data: Any) -> bool:
    """Whether the round-trip loader's ``data`` holds all that ``text`` says,
    with the safe loader as the witness. Text with tags the safe loader does
    not know has no witness, and passes."""
    witness = _data(text, ordered=False)
    try:
        return witness is _Incomparable or witness == _plain(data, tags=False, ordered=False)
    except RecursionError:
        return False


def restore(original: str, written: str) -> str:
    """``written`` with its merely re-spelled lines as ``original`` had them."""
    old = original.splitlines(keepends=True)
    new = written.splitlines(keepends=True)
    blocks: list[dict[int, str]] = []  # each a run of lines: written index -> text
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
            a=old, b=new, autojunk=False).get_opcodes():
        if op != "replace" or i2 - i1 != j2 - j1:
            continue
        block = {}
        for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
            if _same_but_spelling(old[i], new[j]):
                # The written line's ending: \r\n was already decided for the document.
                ending = new[j][len(new[j].rstrip("\r\n")):]
                block[j] = old[i].rstrip("\r\n") + ending
        if block:
            blocks.append(block)
    if not blocks:
        return written

    def apply(chosen: list[dict[int, str]]) -> list[str]:
        lines = list(new)
        for block in chosen:
            for j, text in block.items():
                lines[j] = text
        return lines

    if same_data(written, "".join(apply(blocks))):
        return "".join(apply(blocks))
    # Some run does not hold in its new surroundings: keep those that do.
    kept: list[dict[int, str]] = []
    for block in blocks:
        if same_data(written, "".join(apply([*kept, block]))):
            kept.append(block)
    return "".join(apply(kept))
