"""Turn untrusted text into something safe to show on a terminal.

Paths, headers and authorities come from whoever sends requests through the
mesh. Neither Rich nor Textual strips ESC, the C1 range, NUL or DEL, so a
path like ``/\\x1b[2J`` would clear the user's screen. Every such string is
cleaned once, where it enters the client, into visible escapes (``\\x1b``);
backslashes are escaped too, so the result reads back unambiguously.
Rich markup is a separate matter: the UI shows these strings as plain
``Text``, never as markup.
"""

from __future__ import annotations

import re

# C0 controls, DEL and the C1 range, plus the backslash that starts our escapes.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\udc80-\udcff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    code = ord(ch)
    if code >= 0xDC80:  # a byte that was not UTF-8 (surrogateescape): show the byte
        code -= 0xDC00
    return _NAMED.get(ch) or f"\\x{code:02x}"


def clean(text: str) -> str:
    """``text`` with every control character shown as an escape; safe to display."""
    # isprintable() is false for every control character (and for a few harmless
    # ones, which the regex then passes): a C-speed answer for the usual case.
    if text.isprintable() and "\\" not in text:
        return text
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_escape, text)


def clean_bytes(raw: bytes) -> str:
    """Header values arrive as bytes: decode leniently, then clean."""
    return clean(raw.decode("utf-8", "surrogateescape"))
