"""A YAML stream as its documents, each kept as the exact text it came as.

``meshtui inject`` changes only the documents that hold a workload it
injects; every other document must come out byte for byte as it went in.
ruamel.yaml's round trip keeps comments and key order but not every byte
(spacing before comments, the ``---`` and ``...`` markers, comments before
the first marker), so the stream is cut into documents here, each parsed on
its own, and a document is written anew only when it changed.

Cutting is safe by the YAML spec: a line starting with ``---`` or ``...``
followed by a space or the line's end is a document marker wherever it
stands, even inside a block scalar.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from meshtui.inject import fidelity

_START = re.compile(r"---(?=[ \t]|\r?\n|$)")
_END = re.compile(r"\.\.\.(?=[ \t]|\r?\n|$)")
_BARE_START = re.compile(r"---[ \t]*(#.*)?\r?\n?")  # a marker with nothing after it
_OPENS_BLOCK = re.compile(r"[^#'\"\s-][^#'\"]*:[ \t]*(#.*)?")  # `key:` and nothing after
_NOT_CONTENT = re.compile(r"[ \t]*(#.*)?(\r?\n)?|%.*(\r?\n)?")  # blank, comment or directive


class ParseError(Exception):
    """A document that is not YAML; ``document`` and ``line`` count from 1."""

    def __init__(self, document: int, line: int | None, problem: str) -> None:
        where = f"document {document}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {problem}")
        self.document = document
        self.line = line
        self.problem = problem


@dataclass
class Document:
    """One document of the stream.

    Attributes:
        prefix: kept as it was in front of the body: comments and directives
            before the ``---`` line, and that line when nothing follows it.
        body: the text that is parsed and, if the data changes, written anew.
        suffix: an ``...`` end marker, kept as it was.
        first_line: the body's first line in the whole stream (from 1).
        number: the document's number in the stream (from 1); 0 for a piece
            that holds no document (only comments after an ``...``).
        explicit_start: the ``---`` line carries content, so it is in the body.
        data: the parsed data (ruamel's round-trip types), None for an empty one.
    """

    prefix: str
    body: str
    suffix: str
    first_line: int
    number: int = 0
    explicit_start: bool = False
    data: Any = None

    @property
    def text(self) -> str:
        return self.prefix + self.body + self.suffix


def _is_content(line: str) -> bool:
    return not _NOT_CONTENT.fullmatch(line)


def split(text: str) -> list[Document]:
    """Cuts a stream into documents (not parsed yet); joined, they are ``text`` again."""
    pieces: list[list[str]] = []
    current: list[str] = []
    has_doc = False  # the current piece has a marker or content: a new marker ends it
    for line in text.splitlines(keepends=True):
        if _START.match(line) and has_doc:
            pieces.append(current)
            current = []
        current.append(line)
        if _END.match(line):
            pieces.append(current)
            current, has_doc = [], False
        elif _START.match(line) or _is_content(line):
            has_doc = True
    if current or not pieces:
        pieces.append(current)

    docs: list[Document] = []
    line_no = 1
    number = 0
    for lines in pieces:
        suffix = lines.pop() if lines and _END.match(lines[-1]) else ""
        marker = next((i for i, ln in enumerate(lines) if _START.match(ln)), None)
        is_doc = marker is not None or any(_is_content(ln) for ln in lines)
        if marker is not None and _BARE_START.fullmatch(lines[marker]):
            cut, explicit = marker + 1, False
        elif marker is not None:
            cut, explicit = marker, True
        else:
            # Comments before the first key stay in the body (ruamel keeps them);
            # only directives must stay out, and they come with a marker.
            cut, explicit = 0, False
        number += is_doc
        docs.append(Document(prefix="".join(lines[:cut]), body="".join(lines[cut:]),
                             suffix=suffix, first_line=line_no + cut,
                             number=number if is_doc else 0, explicit_start=explicit))
        line_no += len(lines) + (1 if suffix else 0)
    return docs


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a long string that was on one line
    # `[{name: a}]` stays so, not `[name: a]` (the same data, other bytes).
    y.brace_single_entry_mapping_in_flow_sequence = True
    return y


def parse(docs: list[Document]) -> None:
    """Fills each document's ``data``.

    Raises:
        ParseError: the first document that is not YAML, with the line in the stream.
    """
    y = _yaml()
    for doc in docs:
        if not doc.number:
            continue
        try:
            doc.data = y.load(doc.body)
        except MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = None
            if mark is not None:
                # An error found at the end of the input points past its last line.
                last = doc.first_line + max(doc.body.count("\n") - 1, 0)
                line = min(doc.first_line + mark.line, last)
            problem = e.problem or e.context or "not YAML"
            raise ParseError(doc.number, line, f"could not parse YAML: {problem}") from None
        except ReaderError as e:
            # A character YAML does not allow (a control character): the reader
            # knows only its offset in the document.
            line = doc.first_line + doc.body.count("\n", 0, max(e.position, 0))
            what = (f"#x{e.character:04x}" if isinstance(e.character, int)
                    else repr(e.character))
            raise ParseError(doc.number, line,
                             f"could not parse YAML: character {what} is not allowed "
                             "in YAML (write it escaped, in a double-quoted string)"
                             ) from None
        except (YAMLError, ValueError, TypeError) as e:
            raise ParseError(doc.number, None,
                             f"could not parse YAML: {' '.join(str(e).split())}") from None


def guess_indent(body: str) -> tuple[int, int]:
    """(mapping indent, dash offset) as the text uses them: the first key that
    opens a nested mapping, the first that opens a sequence; (2, 0) otherwise,
    which is kubectl's style."""
    mapping: int | None = None
    dash: int | None = None
    opener: int | None = None  # the indentation of a `key:` line just before
    for line in body.splitlines():
        text = line.lstrip(" ")
        if not text or text.startswith("#"):
            continue
        indent = len(line) - len(text)
        if opener is not None and indent > opener:
            if text.startswith("- ") or text == "-":
                dash = indent - opener if dash is None else dash
            elif mapping is None:
                mapping = indent - opener
        if mapping is not None and dash is not None:
            break
        opener = indent if _OPENS_BLOCK.fullmatch(text) else None
    return mapping or 2, dash or 0


def render(doc: Document) -> str:
    """The document written anew from its data, in the indentation and, line
    for line, the spelling it came in."""
    if doc.data is None:
        return doc.text
    return doc.prefix + fidelity.restore(doc.body, write_body(doc)) + doc.suffix


def write_body(doc: Document) -> str:
    """The document's body as ruamel.yaml writes its data, in the indentation
    and line endings the body used."""
    y = _yaml()
    mapping, dash = guess_indent(doc.body)
    # ruamel's "sequence" indent is where an item's content starts: after "- ".
    y.indent(mapping=mapping, sequence=dash + 2, offset=dash)
    y.explicit_start = doc.explicit_start
    out = io.StringIO()
    y.dump(doc.data, out)
    body = out.getvalue()
    if "\r\n" in doc.body:
        body = body.replace("\n", "\r\n")
    return body
