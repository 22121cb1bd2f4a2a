"""Turn untrusted text into something safe to show on a terminal.

Paths, headers and authorities come from whoever sends requests through the
mesh. Neither Rich nor Textual strips ESC, the C1 range, NUL or DEL, so a
path like ``/\\x1b[2J`` would clear the user's screen; and a terminal obeys
the bidirectional controls, so U+202E in a name shows what follows it
reversed (``/nimda`` read as ``/admin``). Every such string is cleaned once,
where it enters the client, into visible escapes (``\\x1b``, ``\\u202e``);
backslashes are escaped too, so the result reads back unambiguously.
Rich markup is a separate matter: the UI shows these strings as plain
``Text``, never as markup.
"""

from __future__ import annotations

import re

# C0 controls, DEL and the C1 range; Unicode's bidirectional controls (the
# characters of its Bidi_Control property: the embeddings, overrides and
# isolates, and the three marks); the bytes that were not UTF-8 and any other lone
# surrogate (JSON's \ud800 reads as one; no terminal encoding can write it); and the
# backslash that starts our escapes.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\\\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): the byte
        code -= 0xDC00
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


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
    """Header values arrive as bytes: decode as UTF-8, escaping what is not, then clean."""
    return clean(raw.decode("utf-8", "surrogateescape"))


def clean_http(text: str) -> str:
    """A request's method, authority, path or a header's name, as the proxy sends it, cleaned.

    The proxy hands these on as it read them, one character per byte (Latin-1),
    so that any byte survives the wire's UTF-8 strings. Read as characters, a
    UTF-8 name would show as ``â\\x80®`` and hide what it holds (here U+202E):
    the bytes are decoded again as UTF-8, with escapes for what is not.
    Text with a character past U+00FF cannot have been carried so, and is
    cleaned as it is.
    """
    if text.isascii():
        return clean(text)
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return clean(text)
    return clean_bytes(raw)
