"""Captured bodies as people read them: text escaped, binary as hex or base64, gRPC
split into its length-prefixed messages.

A body is untrusted bytes. Nothing here returns them raw for a terminal: text is
cleaned (:mod:`meshtui.model.sanitize`), everything else is hex or base64.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from meshtui.model.sanitize import clean
from meshtui.model.tap import MAX_CAPTURE_BODY, CapturedBody

#: A gRPC message's prefix: a compressed flag byte and a 4-byte big-endian length.
GRPC_PREFIX = 5


@dataclass(frozen=True, slots=True)
class GrpcMessage:
    """One message of a gRPC body: ``data`` is what was captured of it (its first
    ``len(data)`` bytes of ``length``)."""

    compressed: bool
    length: int
    data: bytes

    @property
    def whole(self) -> bool:
        return len(self.data) == self.length


def grpc_messages(data: bytes) -> tuple[list[GrpcMessage], bytes]:
    """The messages a gRPC body's bytes hold, and what is left past the last whole
    prefix (a prefix cut by the capture's end)."""
    out: list[GrpcMessage] = []
    pos = 0
    while len(data) - pos >= GRPC_PREFIX:
        flag = data[pos]
        length = int.from_bytes(data[pos + 1:pos + GRPC_PREFIX], "big")
        start = pos + GRPC_PREFIX
        out.append(GrpcMessage(bool(flag & 1), length, data[start:start + length]))
        pos = start + length
    return out, data[pos:] if pos < len(data) else b""


def text_of(data: bytes, truncated: bool = False) -> str | None:
    """The body as text, control characters escaped; None when it is binary (not
    UTF-8, or more than one in ten characters a control character)."""
    text = decoded(data, truncated)
    return None if text is None else clean(text)


def decoded(data: bytes, truncated: bool) -> str | None:
    """The body as text, raw (unescaped: for files, not terminals); None when binary."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        # A capture cut in the middle of a character is still text.
        if not (truncated and e.start >= len(data) - 3 and e.reason == "unexpected end of data"):
            return None
        text = data[:e.start].decode("utf-8")
    controls = sum(1 for c in text if not c.isprintable() and c not in "\t\n\r")
    if controls * 10 > len(text):
        return None
    return text


def hex_lines(data: bytes, width: int = 16) -> list[str]:
    """``0000  48 65 6c 6c 6f ...  Hello...``: offset, bytes, printable ASCII."""
    lines = []
    for off in range(0, len(data), width):
        row = data[off:off + width]
        hexes = " ".join(f"{b:02x}" for b in row)
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{off:04x}  {hexes:<{width * 3 - 1}}  {ascii_}")
    return lines


def is_grpc(content_type: str | None) -> bool:
    return bool(content_type) and content_type.lower().startswith("application/grpc")  # type: ignore[union-attr]


def body_lines(body: CapturedBody, grpc: bool) -> list[str]:
    """The detail view of one body: text as lines, binary as hex, gRPC by message."""
    more = " (truncated)" if body.truncated else ""
    if not body.data:
        return [f"(empty{more})"]
    head = f"{len(body.data)} bytes captured{more}"
    if grpc:
        msgs, rest = grpc_messages(body.data)
        lines = [f"{head}, {len(msgs)} gRPC message{'s' if len(msgs) != 1 else ''}"]
        for i, m in enumerate(msgs, 1):
            cut = "" if m.whole else f", {len(m.data)} captured"
            lines.append(f"message {i}: compressed={'yes' if m.compressed else 'no'} "
                         f"length={m.length}{cut}")
            lines.extend("  " + ln for ln in _payload(m.data, not m.whole or m.compressed))
        if rest:
            lines.append(f"{len(rest)} bytes of a cut prefix: {rest.hex(' ')}")
        return lines
    return [head, *_payload(body.data, body.truncated)]


def _payload(data: bytes, truncated: bool) -> list[str]:
    text = decoded(data, truncated)
    if text is None:
        return hex_lines(data)
    return [clean(line) for line in text.split("\n")]


def body_summary(body: CapturedBody, grpc: bool) -> str:
    """One line for ``tap``'s text output: ``"escaped text"``, ``grpc[...]`` or
    ``base64:...``, with ``…`` when the body went on."""
    more = "…" if body.truncated else ""
    if grpc:
        msgs, _ = grpc_messages(body.data)
        parts = []
        for m in msgs:
            text = None if m.compressed else text_of(m.data, not m.whole)
            shown = f'"{text}"' if text is not None else "base64:" + _b64(m.data)
            parts.append(f"{'z' if m.compressed else ''}{m.length}B {shown}")
        return f"grpc[{', '.join(parts)}]{more}"
    text = text_of(body.data, body.truncated)
    if text is not None:
        return f'"{text}"{more}'
    return f"base64:{_b64(body.data)}{more}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def body_json(body: CapturedBody) -> dict[str, object]:
    """A body in ``tap -o json``: always base64 (JSON strings cannot hold bytes)."""
    return {"base64": _b64(body.data), "truncated": body.truncated, "limit": body.limit}


def read_body_json(v: object, what: str) -> CapturedBody:
    """The inverse of :func:`body_json`; ValueError (one line) for anything else."""
    if not isinstance(v, dict):
        raise ValueError(f"{what} is not an object")
    raw, truncated, limit = v.get("base64", ""), v.get("truncated", False), v.get("limit", 0)
    if not isinstance(raw, str) or len(raw) > 4 * MAX_CAPTURE_BODY // 3 + 4:
        raise ValueError(f"{what}.base64 is not a string of at most {MAX_CAPTURE_BODY} bytes")
    if not isinstance(truncated, bool):
        raise ValueError(f"{what}.truncated is not true or false")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_CAPTURE_BODY:
        raise ValueError(f"{what}.limit is not a whole number from 0 to {MAX_CAPTURE_BODY}")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}.base64 is not base64") from None
    if len(data) > limit:
        raise ValueError(f"{what} holds {len(data)} bytes, past its limit of {limit}")
    return CapturedBody(data, truncated, limit)


class BodyClamp:
    """Notices, once, that the proxies capture fewer bytes than were asked (their
    ``--max-capture-body`` is lower): each captured body carries its limit."""

    def __init__(self, asked: int) -> None:
        self.asked = asked
        self.limit: int | None = None  # the lower limit found, once found

    def check(self, events: Iterable[object]) -> str | None:
        """One line to tell the user, the first time a lower limit shows."""
        if self.limit is not None or not self.asked:
            return None
        for ev in events:
            body = getattr(ev, "request_body", None)
            if body is not None and body.limit < self.asked:
                return self.saw(body.limit)
        return None

    def saw(self, limit: int) -> str | None:
        """As :meth:`check`, given a captured body's limit."""
        if self.limit is not None or not self.asked or limit >= self.asked:
            return None
        self.limit = limit
        return (f"bodies are captured up to {limit} bytes, not {self.asked}: "
                f"the proxies' --max-capture-body is lower")
