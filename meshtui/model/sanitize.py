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
        return f"\\x{code - 0xDC00:02x}"
    # Characters past 0x7F as \u: a C1 control (U+0085) must read back apart from
    # the byte 0x85 that was not UTF-8.
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code <= 0x7F else f"\\u{code:04x}")


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


# clean()'s escapes, read back: every backslash in its output starts one of these.
_ESCAPE = re.compile(r"\\(?:([\\tnr])|x([0-9a-f]{2})|u([0-9a-f]{4}))")
_NAMED_BACK = {"\\": b"\\", "t": b"\t", "n": b"\n", "r": b"\r"}


def raw_bytes(shown: str) -> bytes:
    """The bytes :func:`clean` (or :func:`clean_bytes`) was given, from what it made.

    What the client holds is cleaned for display; what it writes for other programs
    (a saved file, a curl line, HAR) must carry the original, or each save and replay
    would escape the escapes again (``C:\\temp`` read back as ``C:\\\\temp``). A
    ``\\xNN`` is that byte; a character past 0x7F was escaped as ``\\uNNNN``.
    """
    if "\\" not in shown:
        return shown.encode("utf-8", "surrogatepass")
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(shown):
        out += shown[pos:m.start()].encode("utf-8", "surrogatepass")
        named, byte, code = m.groups()
        if named:
            out += _NAMED_BACK[named]
        elif byte:
            out.append(int(byte, 16))
        else:
            out += chr(int(code, 16)).encode("utf-8", "surrogatepass")
        pos = m.end()
    out += shown[pos:].encode("utf-8", "surrogatepass")
    return bytes(out)


def raw_text(shown: str) -> str:
    """The text :func:`clean` was given, from what it made: ``\\x80`` and up are bytes
    that were not UTF-8, and each (like a lone surrogate) becomes U+FFFD, as text
    cannot hold it (:func:`raw_bytes` keeps it)."""
    if "\\" not in shown:
        return shown
    out = []
    pos = 0
    for m in _ESCAPE.finditer(shown):
        out.append(shown[pos:m.start()])
        named, byte, code = m.groups()
        if named:
            out.append(_NAMED_BACK[named].decode())
        elif byte:
            n = int(byte, 16)
            out.append(chr(n) if n <= 0x7F else "\ufffd")  # past 0x7F: a byte, not text
        else:
            n = int(code, 16)
            out.append("\ufffd" if 0xD800 <= n <= 0xDFFF else chr(n))
        pos = m.end()
    out.append(shown[pos:])
    return "".join(out)


# What a JSON writer must escape besides what json.dumps does: DEL, the C1 range and
# the bidirectional controls reach a terminal as they are with ensure_ascii=False.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def json_safe(dumped: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` document with the characters a terminal
    would obey written as ``\\uXXXX`` (they only ever occur inside its strings)."""
    if dumped.isascii() and "\x7f" not in dumped:
        return dumped
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)
