"""Requests as HAR 1.2 (what browsers' developer tools import) and as a curl command line.

Tap sees heads, and bodies only when asked (``--capture-body``), and not the HTTP
version: HAR's sizes it cannot know are -1, as the format says for unknown sizes,
the version is left empty, and ``content.size`` is the response length the proxy
counted. A captured body goes into ``postData.text`` / ``content.text``, as text
when it is, else base64 with ``encoding: base64``; a cut one says so in ``comment``.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import meshtui
from meshtui.model.bodies import decoded
from meshtui.model.redact import REDACTED
from meshtui.model.sanitize import json_safe, raw_bytes, raw_text
from meshtui.model.tap import CapturedBody, Request

# Headers a curl line must not carry over: curl sets them itself, or they describe
# a body the line does not send.
_CURL_SKIP = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _url(r: Request) -> str:
    init = r.init
    if init is None:
        return ""
    scheme = raw_text(init.scheme) or "http"
    return f"{scheme}://{raw_text(init.authority)}{raw_text(init.path)}"


#: What a HAR header or query parameter whose value tap withheld says, in its comment.
REDACTED_COMMENT = "value withheld by tap (meshtui.model.redact); not the original"
#: What the tap detail pane says under a curl line that holds a withheld value.
CURL_REDACTED_NOTE = f"{REDACTED} marks values tap withheld: put the real ones in first"


def _pair(n: str, v: str, shown: bool = True) -> dict[str, str]:
    """A header (as the feed shows it: ``shown``) or a query parameter (already the
    original text) as HAR's name/value pair."""
    if shown:
        n = raw_text(n)
    # HAR 1.2 lets every header and query parameter carry a comment.
    if v == REDACTED:
        return {"name": n, "value": v, "comment": REDACTED_COMMENT}
    return {"name": n, "value": raw_text(v) if shown else v}


def _headers(hs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    # Pseudo-headers (:method, :path) are HTTP/2's request line, not headers.
    return [_pair(n, v) for n, v in hs if not n.startswith(":")]


def _header(hs: Iterable[tuple[str, str]], name: str) -> str:
    for n, v in hs:
        if n.lower() == name:
            return raw_text(v)
    return ""


_PHRASES = {s.value: s.phrase for s in HTTPStatus}


#: The last instant a HAR date can hold (year 9999); a saved file may claim later.
_LAST_US = 253_402_300_799_999_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _started(us: int) -> str:
    """An ISO 8601 date for HAR, from microseconds since the epoch, kept to years 1970
    to 9999 (a replayed file's timestamp is whatever its writer put there)."""
    us = min(max(0, us), _LAST_US)
    return (_EPOCH + timedelta(microseconds=us)).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _ms(us: int | None) -> float:
    return max(0, us or 0) / 1000


def _body(body: CapturedBody, out: dict[str, Any]) -> dict[str, Any]:
    text = decoded(body.data, body.truncated)
    if text is None:
        out["text"] = base64.b64encode(body.data).decode("ascii")
        out["encoding"] = "base64"
    else:
        out["text"] = text
    if body.truncated:
        out["comment"] = f"the first {len(body.data)} bytes (tap --capture-body)"
    return out


def har_entry(r: Request) -> dict[str, Any]:
    """One request as a HAR 1.2 entry."""
    init, rsp, end = r.init, r.response, r.end
    req_headers = init.headers if init else ()
    rsp_headers = (rsp.headers if rsp else ()) + (end.trailers if end else ())
    status = rsp.status if rsp else 0
    status_text = _PHRASES.get(status, "")
    path = raw_text(init.path) if init else ""
    size = end.response_bytes if end else -1
    wait = _ms(r.latency_us)
    receive = _ms(end.duration_us) if end else 0.0
    entry: dict[str, Any] = {
        "startedDateTime": _started(r.started_us or 0),
        "time": wait + receive,
        "request": {
            "method": raw_text(r.method or ""), "url": _url(r), "httpVersion": "",
            "cookies": [], "headers": _headers(req_headers),
            "queryString": [_pair(k, v, shown=False) for k, v in
                            parse_qsl(path.partition("?")[2], keep_blank_values=True)],
            "headersSize": -1, "bodySize": -1,
        },
        "response": {
            "status": status, "statusText": status_text, "httpVersion": "",
            "cookies": [], "headers": _headers(rsp_headers),
            "content": {"size": max(size, 0),
                        "mimeType": _header(rsp_headers, "content-type")},
            "redirectURL": _header(rsp_headers, "location"),
            "headersSize": -1, "bodySize": size,
        },
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": receive},
        "comment": f"{r.source.label} -> {r.destination.label} ({r.direction.value or '?'})",
    }
    if end is not None and end.request_body is not None:
        entry["request"]["postData"] = _body(end.request_body, {
            "mimeType": _header(req_headers, "content-type"), "params": []})
    if end is not None and end.response_body is not None:
        _body(end.response_body, entry["response"]["content"])
    return entry


def har(requests: Iterable[Request]) -> dict[str, Any]:
    """A HAR 1.2 document of ``requests`` (those whose start tap saw)."""
    return {"log": {
        "version": "1.2",
        "creator": {"name": "meshtui", "version": meshtui.__version__},
        "entries": [har_entry(r) for r in requests if r.init is not None],
    }}


def write_har(path: str, requests: Iterable[Request]) -> int:
    """Writes the HAR document of :func:`har`; how many entries it holds.

    Entry by entry, in chunks: building the whole document first keeps every
    entry's dicts alive at once, and the collector's passes over them cost more
    than making them.
    """
    head = json.dumps(har(()), separators=(",", ":"))  # ends with the entries: []}}
    n = 0
    chunk: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        f.write(head[:-3])
        for r in requests:
            if r.init is None:
                continue
            chunk.append(_dumps(har_entry(r)))
            n += 1
            if len(chunk) == 1000:
                f.write(("," if n > 1000 else "") + ",".join(chunk))
                chunk = []
        if chunk:
            f.write(("," if n > len(chunk) else "") + ",".join(chunk))
        f.write("]}}")
    return n


def _dumps(entry: dict[str, Any]) -> str:
    return json_safe(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))


def curl_line(r: Request) -> str:
    """A curl command line that sends the request again to the same authority
    (without its body, which tap does not see); every part shell-quoted."""
    init = r.init
    if init is None:
        return ""
    parts = ["curl", "-sS", "-X", init.method]
    for name, value in init.headers:
        if name.startswith(":") or name.lower() in _CURL_SKIP:
            continue
        parts += ["-H", f"{name}: {value}"]
    if init.authority:
        parts += ["-H", f"Host: {init.authority}"]
    parts += ["--", f"{init.scheme or 'http'}://{init.authority}{init.path}"]
    return " ".join(_shell(p) for p in parts)


def _shell(shown: str) -> str:
    """A word of the curl line: the original text (not the escaped form the feed shows),
    quoted for the shell. One holding a control character, a bidirectional one or a
    byte that is not UTF-8 is quoted as ``$'...'`` with those as ``\\xNN``: the line
    stays safe to show, and bash and zsh send what was seen."""
    text = raw_bytes(shown).decode("utf-8", "surrogateescape")
    if text.isprintable():
        return shlex.quote(text)
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            raw = ch.encode("utf-8", "surrogateescape")
            out.append("".join(f"\\x{b:02x}" for b in raw))
    return "$'" + "".join(out) + "'"
