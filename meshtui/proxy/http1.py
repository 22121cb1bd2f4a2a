"""HTTP/1.x on the wire: protocol detection, limits, header rules and framing.

Everything here is synchronous and allocation-light: it runs once or more per
proxied request. Parsing itself is httptools' (llhttp); this module holds what
the proxy decides around it — which connections are HTTP at all, which headers
are hop-by-hop (RFC 9110 §7.6.1), how a message is framed on the next hop, and
what the proxy's own error responses look like.
"""

from __future__ import annotations

import re
from typing import Final

# --- limits (DESIGN.md principle 7) -------------------------------------------------

MAX_REQUEST_LINE: Final = 8 * 1024  # 414 past it
MAX_HEADERS: Final = 100  # 431 past it
MAX_HEADER_BYTES: Final = 60 * 1024  # 431 past it (names, values and their framing)

# --- protocol detection ----------------------------------------------------------------

HTTP: Final = 1
OPAQUE: Final = 2
NEED_MORE: Final = 0
HTTP2: Final = 3  # the HTTP/2 connection preface (prior knowledge)
BAD_PREFACE: Final = 4  # the preface's request line, then something else

# A request line starts with a method token (RFC 9110 §9: tokens; in practice
# upper-case letters) and one space. HTTP/2's connection preface starts with
# "PRI * HTTP/2.0", which is no HTTP/1 request.
_METHOD_PREFIX = re.compile(rb"[A-Z][A-Z_-]{0,19} ")
_METHOD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
_REQUEST_LINE = re.compile(rb"[A-Z][A-Z_-]{0,19} [^ \r\n]+ HTTP/\d\.\d\r?$")
# What a request line looks like even when it is malformed: a word of letters
# (any case), spaces, and a target in origin form ("/..."), asterisk form, or
# absolute form, or anything ending in an HTTP version. Such a line is HTTP that
# the parser refuses with 400, never an opaque tunnel past the limits, tap and
# metrics. Text protocols that are not HTTP ("get key" of memcached, "SET k v"
# of Redis's inline form) look like none of these and stay opaque.
_LOOKS_LIKE_HTTP = re.compile(
    rb"[A-Za-z][A-Za-z_-]{0,19} +(?:[/*]|[Hh][Tt][Tt][Pp][Ss]?://|[^\r\n]* [Hh][Tt][Tt][Pp]/)")
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_H2_LINE = _H2_PREFACE[:14]


def detect(prefix: bytes | bytearray, *, timed_out: bool = False) -> int:
    """Classifies a connection by its first bytes: HTTP, HTTP2, BAD_PREFACE, OPAQUE
    or NEED_MORE.

    HTTP2 once the whole HTTP/2 preface is there; BAD_PREFACE when its first line
    is followed by anything else (a client that meant HTTP/2 and got it wrong).

    HTTP once the first line is a complete HTTP/1 request line — or looks like
    one, malformed (``get /``, ``GET  /``, ``GET /a b HTTP/1.1``: the parser
    answers 400) — or once the client has sent a method and a space and then
    either stopped (timed out: a slow client gets the header-read timeout, not an
    opaque relay) or sent more than a request line may hold (it gets 414).
    OPAQUE as soon as the bytes cannot begin a request line, and on timeout for
    anything else.
    """
    head = bytes(prefix[: MAX_REQUEST_LINE + 2])
    if not head:
        return OPAQUE if timed_out else NEED_MORE
    if len(head) >= 4 and head[:24] == _H2_PREFACE[:len(head)]:
        if len(head) >= 24:
            return HTTP2
        return OPAQUE if timed_out else NEED_MORE
    if head.startswith(_H2_LINE):
        return BAD_PREFACE
    nl = head.find(b"\n")
    line = head if nl < 0 else head[:nl]
    if _METHOD_PREFIX.match(head) is None:
        if _LOOKS_LIKE_HTTP.match(line):
            return HTTP
        # Still only method characters (and spaces) so far: the target may follow.
        if nl < 0 and len(head) <= 40 and all(c in _METHOD_CHARS for c in head.rstrip(b" ")):
            if not timed_out:
                return NEED_MORE
            if len(head) <= 20 and head.isupper():
                return HTTP  # a method trickled in slowly: the head timeout is its limit
        return OPAQUE
    if nl >= 0:
        return HTTP if _REQUEST_LINE.match(line) or _LOOKS_LIKE_HTTP.match(line) else OPAQUE
    if timed_out or len(head) > MAX_REQUEST_LINE:
        return HTTP
    return NEED_MORE


# --- headers ------------------------------------------------------------------------------

# Hop-by-hop fields (RFC 9110 §7.6.1) plus the framing ones the proxy writes
# itself for the next hop. Keys are lower-case.
HOP_BY_HOP: Final = frozenset({
    b"connection", b"proxy-connection", b"keep-alive", b"te", b"trailer",
    b"transfer-encoding", b"upgrade",
})

# Transfer codings the proxy can pass on (it re-frames only "chunked").
KNOWN_CODINGS: Final = frozenset({b"chunked", b"gzip", b"x-gzip", b"deflate", b"compress",
                                  b"identity"})


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """The lower-cased option names of every ``Connection`` field."""
    out: set[bytes] = set()
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"connection":
            out.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return out


def chunked_last(value: bytes) -> bool:
    """Whether chunked is the final coding of a Transfer-Encoding value: the only
    way a request body's end can be known (RFC 9112 §6.3)."""
    last = value.rsplit(b",", 1)[-1].split(b";", 1)[0].strip().lower()
    return last == b"chunked"


def unknown_coding(value: bytes) -> bytes | None:
    """The first transfer coding the proxy does not know in a Transfer-Encoding value."""
    for part in value.split(b","):
        coding = part.split(b";", 1)[0].strip().lower()
        if coding and coding not in KNOWN_CODINGS:
            return coding
    return None


# Lengths of the HOP_BY_HOP names: most headers are ruled out without lower().
_HOP_LENGTHS: Final = frozenset(len(n) for n in HOP_BY_HOP)


def end_to_end(headers: list[tuple[bytes, bytes]], keep: frozenset[bytes] = frozenset()
               ) -> list[tuple[bytes, bytes]]:
    """The headers without hop-by-hop fields and those the Connection field names.

    ``keep`` lists lower-case names to keep anyway (``upgrade`` while an
    upgrade is being passed on).
    """
    drop: set[bytes] | None = None
    out = []
    for name, value in headers:
        if len(name) not in _HOP_LENGTHS:
            out.append((name, value))
            continue
        low = name.lower()
        if low in HOP_BY_HOP and low not in keep:
            if low == b"connection":
                drop = (drop or set()) | {
                    t.strip().lower() for t in value.split(b",") if t.strip()}
            continue
        out.append((name, value))
    if drop:
        drop -= keep
        out = [(n, v) for n, v in out if n.lower() not in drop]
    return out


class Framing:
    """What one pass over a message's headers tells the proxy.

    Attributes:
        length: the Content-Length value; None if absent.
        te: the Transfer-Encoding value(s), joined; None if absent.
        host: the Host value (requests); None if absent.
        hosts: how many Host fields there were.
        expect_continue: ``Expect: 100-continue`` (requests).
        plain: no hop-by-hop field other than ``Connection: keep-alive`` and the
            framing itself — the head may travel on unchanged.
        grpc_status: the ``grpc-status`` value as telemetry reads it (a trailers-only
            gRPC response carries it in its headers); None if absent.
    """

    __slots__ = ("expect_continue", "grpc_status", "host", "hosts", "length", "plain", "te")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.length: bytes | None = None
        self.te: bytes | None = None
        self.host: bytes | None = None
        self.hosts = 0
        self.expect_continue = False
        self.grpc_status: int | None = None
        plain = True
        hop_lengths = _HOP_LENGTHS
        for name, value in headers:
            n = len(name)
            if n == 14:
                if name.lower() == b"content-length":
                    self.length = value.strip()
            elif n == 4:
                if name.lower() == b"host":
                    self.host = value
                    self.hosts += 1
            elif n == 6:
                if name.lower() == b"expect":
                    self.expect_continue = value.strip().lower() == b"100-continue"
            elif n == 11:
                if name.lower() == b"grpc-status" and self.grpc_status is None:
                    self.grpc_status = grpc_status_code(value)
            elif n in hop_lengths:
                low = name.lower()
                if low == b"transfer-encoding":
                    self.te = value if self.te is None else self.te + b", " + value
                elif low == b"connection":
                    plain = plain and value.strip().lower() == b"keep-alive"
                elif low in HOP_BY_HOP:
                    plain = False
        self.plain = plain

    @property
    def chunked_only(self) -> bool:
        return self.te is not None and self.te.strip().lower() == b"chunked"


def grpc_status_code(value: bytes) -> int:
    """A ``grpc-status`` value as a code; 2 (UNKNOWN) when it is unreadable."""
    try:
        return int(value)
    except ValueError:
        return 2


def serialize(first_line: bytes, headers: list[tuple[bytes, bytes]],
              extra: bytes = b"") -> bytes:
    """``first_line`` CRLF, each header CRLF, ``extra`` (already CRLF-terminated
    lines), and the blank line."""
    parts = [first_line, b"\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts += (extra, b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(trailers: list[tuple[bytes, bytes]] | None) -> bytes:
    """The zero-size chunk, the trailer fields and the blank line."""
    if not trailers:
        return b"0\r\n\r\n"
    return b"".join([b"0\r\n", *(b"%b: %b\r\n" % t for t in trailers), b"\r\n"])


def split_authority(authority: str, default_port: int = 80) -> tuple[str, int] | None:
    """``host[:port]`` or ``[v6][:port]`` → (host, port); None if malformed."""
    authority = authority.strip()
    if not authority:
        return None
    if authority.startswith("["):
        host, sep, rest = authority[1:].partition("]")
        if not sep or not host:
            return None
        port_s = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, sep, port_s = authority.partition(":")
        if ":" in port_s:
            return None
    if port_s is None or not host:
        return None
    if not port_s:
        return host, default_port
    if not (port_s.isascii() and port_s.isdigit()) or not 0 < int(port_s) < 65536:
        return None
    return host, int(port_s)


def split_absolute(target: bytes) -> tuple[str, bytes] | None:
    """``http://authority/path?q`` → (authority, origin-form path); None if not absolute."""
    low = target[:8].lower()
    if low.startswith(b"http://"):
        rest = target[7:]
    elif low.startswith(b"https://"):
        rest = target[8:]
    else:
        return None
    cut = len(rest)
    for sep in (b"/", b"?", b"#"):
        i = rest.find(sep)
        if 0 <= i < cut:
            cut = i
    authority = rest[:cut].rsplit(b"@", 1)[-1]  # userinfo is not the authority
    path = rest[cut:]
    if not path.startswith(b"/"):
        path = b"/" + path
    return authority.decode("latin-1"), path


# --- the proxy's own responses --------------------------------------------------------

REASONS: Final = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK",
    400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found", 408: b"Request Timeout",
    413: b"Content Too Large", 414: b"URI Too Long", 417: b"Expectation Failed",
    431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    501: b"Not Implemented", 502: b"Bad Gateway", 503: b"Service Unavailable",
    504: b"Gateway Timeout", 505: b"HTTP Version Not Supported", 508: b"Loop Detected",
}

ERROR_HEADER: Final = b"meshtui-proxy-error"


def error_response(status: int, reason: str, *, close: bool, head_only: bool = False
                   ) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
    """A response of the proxy's own: its bytes, its headers and its body's length.

    The reason travels in the ``meshtui-proxy-error`` header and as the body, so
    a person with curl and a program reading headers both see why.
    """
    body = f"{reason}\n".encode("latin-1", "replace")
    headers = [
        (ERROR_HEADER, reason.encode("latin-1", "replace")),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    line = b"HTTP/1.1 %d %b" % (status, REASONS.get(status, b"Error"))
    return serialize(line, headers) + (b"" if head_only else body), headers, len(body)
