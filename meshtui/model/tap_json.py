"""Tap events in Linkerd's ``tap -o json`` shape, both ways: what ``tap -o json`` and the
feed's ``w`` write, and what ``tap --replay`` reads back.

A saved file is untrusted input: anyone can write one. :func:`read_event` takes
one parsed line and either returns an event, every string cleaned for display
(:mod:`meshtui.model.sanitize`), or raises :class:`BadEvent` saying what was
wrong; it never trusts a type, a range or a length it did not check.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from meshtui.model.bodies import body_json, read_body_json
from meshtui.model.inventory import Workload
from meshtui.model.redact import active
from meshtui.model.sanitize import clean, json_safe, raw_bytes, raw_text
from meshtui.model.tap import (
    CapturedBody,
    Endpoint,
    Headers,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    StreamId,
    TapEvent,
)
from meshtui.model.tap_lines import (
    DIRECTIONS,
    MAX_ENDPOINTS,
    MAX_INT,
    Line,
    LineDecoder,
    decode_headers,
)


class BadEvent(ValueError):
    """A line that is not a tap event this reader understands; one line for the user."""


# ---- writing ----------------------------------------------------------------------


def _peer(e: Endpoint) -> dict[str, Any]:
    meta = {k: v for k, v in (("namespace", e.workload.namespace),
                              ("deployment", e.workload.deployment),
                              ("pod", e.workload.pod)) if v}
    return {"ip": raw_text(e.ip), "port": e.port,
            "metadata": {k: raw_text(v) for k, v in meta.items()}}


def _duration(us: int) -> dict[str, int]:
    """A protobuf Duration in its JSON object form, as Linkerd's tap prints it."""
    return {"seconds": us // 1_000_000, "nanos": (us % 1_000_000) * 1000}


def _header(name: str, value: str) -> dict[str, str]:
    """A header as Linkerd's tap writes it: its value as text when it is UTF-8, else
    its bytes in base64 (``valueBin``); what the feed shows escaped goes out raw."""
    text = raw_text(value)
    if "\ufffd" in text and "\ufffd" not in value:  # bytes text cannot hold
        return {"name": raw_text(name),
                "valueBin": base64.b64encode(raw_bytes(value)).decode("ascii")}
    return {"name": raw_text(name), "valueStr": text}


def _headers(hs: Headers) -> list[dict[str, str]]:
    return [_header(n, v) for n, v in hs]


def tap_json(ev: TapEvent) -> dict[str, Any]:
    """Linkerd's ``tap -o json`` shape: source, destination, proxyDirection, one event
    (and ``timestamp_us``, meshtui's, so that a replay keeps the times)."""
    out: dict[str, Any] = {
        "source": _peer(ev.source),
        "destination": _peer(ev.destination),
        "routeMeta": None,
        "proxyDirection": ev.direction.value.upper() or "UNKNOWN",
        "timestampUs": ev.timestamp_us,
        "tls": ev.tls,
    }
    sid = {"base": ev.stream.base, "stream": ev.stream.stream}
    if isinstance(ev, RequestInit):
        out["requestInitEvent"] = {"id": sid, "method": raw_text(ev.method),
                                   "scheme": raw_text(ev.scheme),
                                   "authority": raw_text(ev.authority),
                                   "path": raw_text(ev.path),
                                   "headers": _headers(ev.headers)}
    elif isinstance(ev, ResponseInit):
        out["responseInitEvent"] = {"id": sid, "sinceRequestInit": _duration(ev.latency_us),
                                    "httpStatus": ev.status, "headers": _headers(ev.headers)}
    elif isinstance(ev, ResponseEnd):
        end: dict[str, Any] = {"id": sid, "sinceRequestInit": _duration(ev.since_request_us),
                               "sinceResponseInit": _duration(ev.duration_us),
                               "responseBytes": ev.response_bytes,
                               "trailers": _headers(ev.trailers)}
        if ev.grpc_status is not None:
            end["grpcStatusCode"] = ev.grpc_status
        if ev.reset_code is not None:
            end["resetErrorCode"] = ev.reset_code
        # Not Linkerd's (its tap has no bodies): meshtui's, base64 always.
        if ev.request_body is not None:
            end["capturedRequestBody"] = body_json(ev.request_body)
        if ev.response_body is not None:
            end["capturedResponseBody"] = body_json(ev.response_body)
        out["responseEndEvent"] = end
    return out


def tap_json_line(ev: TapEvent) -> str:
    # Raw text in JSON's escapes, and nothing a terminal would obey: the line may be
    # printed (tap -o json) as well as saved.
    return json_safe(json.dumps(tap_json(ev), ensure_ascii=False, separators=(",", ":")))


# ---- reading ----------------------------------------------------------------------


def _int(v: object, what: str, low: int = 0, high: int = MAX_INT) -> int:
    if type(v) is not int or not low <= v <= high:
        raise BadEvent(f"{what} is not a whole number from {low} to {high}")
    return v


def _str(v: object, what: str) -> str:
    if not isinstance(v, str):
        raise BadEvent(f"{what} is not text")
    return clean(v)


def _obj(v: object, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise BadEvent(f"{what} is not an object")
    return v


def _us(v: object, what: str) -> int:
    d = _obj(v, what)
    return (_int(d.get("seconds", 0), what, 0, 10**12) * 1_000_000
            + _int(d.get("nanos", 0), what, 0, 999_999_999) // 1000)


class Reader:
    """Reads events line by line; endpoints repeat, so each is made once."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[object, ...], Endpoint] = {}
        self._lines = LineDecoder()

    def _endpoint(self, v: object, what: str) -> Endpoint:
        d = _obj(v, what)
        meta = _obj(d.get("metadata") or {}, what)
        raw = (d.get("ip"), d.get("port"), meta.get("namespace", ""),
               meta.get("deployment", ""), meta.get("pod", ""))
        try:
            hit = self._endpoints.get(raw)
        except TypeError:  # a list or an object where text belongs: not hashable
            raise BadEvent(f"{what} is not an endpoint") from None
        if hit is None:
            ns, deploy, pod = (_str(x, what) for x in raw[2:])
            hit = Endpoint(_str(raw[0], f"{what} ip"), _int(raw[1], f"{what} port", 0, 65535),
                           Workload(ns, deploy, pod))
            if len(self._endpoints) < MAX_ENDPOINTS:
                self._endpoints[raw] = hit
        return hit

    def read_line(self, line: str | bytes) -> TapEvent:
        """One line as a model event (see :meth:`read_step`)."""
        step = self.read_step(line)
        return step if isinstance(step, TapEvent) else step.event()

    def read_step(self, line: str | bytes) -> TapEvent | Line:
        """One line as a step of a request. A line in the shape ``tap -o json`` writes
        is decoded and checked in one pass by msgspec and kept as a :class:`Line`
        (made a model event when looked at; one with captured bodies at once, so
        that a bad body is a bad line now); anything else, from a wrong type to a
        lone surrogate, takes the general path, which accepts and refuses exactly as
        before and says why a line is bad."""
        fast = self._lines.decode(line)
        if fast is not None:
            if fast.slot != 2 or not fast.has_bodies:
                return fast
            try:
                return fast.event()
            except ValueError as e:
                raise BadEvent(str(e)) from None
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise BadEvent(f"not JSON ({type(e).__name__})") from None
        return self.read_event(obj)

    def read_event(self, obj: object) -> TapEvent:
        o = _obj(obj, "the line")
        named = o.get("proxyDirection")
        direction = DIRECTIONS.get(named) if isinstance(named, str) else None
        if direction is None:
            raise BadEvent("proxyDirection is not INBOUND, OUTBOUND or UNKNOWN")
        common: dict[str, Any] = {
            "source": self._endpoint(o.get("source"), "source"),
            "destination": self._endpoint(o.get("destination"), "destination"),
            "direction": direction,
            "timestamp_us": _int(o.get("timestampUs", 0), "timestampUs"),
            "tls": o.get("tls") is True,
        }
        for kind in ("requestInitEvent", "responseInitEvent", "responseEndEvent"):
            if kind in o:
                ev = _obj(o[kind], kind)
                sid = _obj(ev.get("id"), f"{kind} id")
                common["stream"] = StreamId(_int(sid.get("base", 0), "id base"),
                                            _int(sid.get("stream", 0), "id stream"))
                return _KINDS[kind](ev, common)
        raise BadEvent("no requestInitEvent, responseInitEvent or responseEndEvent")


def _header_bytes(value: object, what: str) -> bytes:
    """A ``valueBin``: base64 text, checked."""
    if not isinstance(value, str):
        raise BadEvent(f"{what} valueBin is not text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadEvent(f"{what} valueBin is not base64") from None


def _read_headers(v: object, what: str) -> Headers:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise BadEvent(f"{what} is not a list")
    out: list[tuple[str, str | bytes]] = []
    for h in v:
        h = _obj(h, what)
        name, value = h.get("name"), h.get("valueStr", "")
        if not isinstance(name, str):
            raise BadEvent(f"{what} name is not text")
        if not isinstance(value, str):
            raise BadEvent(f"{what} value is not text")
        if h.get("valueBin") is not None:
            out.append((name, _header_bytes(h["valueBin"], what)))
        else:
            out.append((name, value))
    return decode_headers(out)


def _request(ev: dict[str, Any], common: dict[str, Any]) -> RequestInit:
    redact = active()
    return RequestInit(**common, method=_str(ev.get("method", ""), "method"),
                       scheme=_str(ev.get("scheme", ""), "scheme"),
                       authority=redact.authority(_str(ev.get("authority", ""), "authority")),
                       path=redact.path(_str(ev.get("path", ""), "path")),
                       headers=_read_headers(ev.get("headers"), "headers"))


def _response(ev: dict[str, Any], common: dict[str, Any]) -> ResponseInit:
    return ResponseInit(**common, status=_int(ev.get("httpStatus"), "httpStatus", 0, 999),
                        latency_us=_us(ev.get("sinceRequestInit", {}), "sinceRequestInit"),
                        headers=_read_headers(ev.get("headers"), "headers"))


def _end(ev: dict[str, Any], common: dict[str, Any]) -> ResponseEnd:
    grpc, reset = ev.get("grpcStatusCode"), ev.get("resetErrorCode")
    return ResponseEnd(
        **common,
        since_request_us=_us(ev.get("sinceRequestInit", {}), "sinceRequestInit"),
        duration_us=_us(ev.get("sinceResponseInit", {}), "sinceResponseInit"),
        response_bytes=_int(ev.get("responseBytes", 0), "responseBytes"),
        grpc_status=None if grpc is None else _int(grpc, "grpcStatusCode", 0, 2**32 - 1),
        reset_code=None if reset is None else _int(reset, "resetErrorCode", 0, 2**32 - 1),
        trailers=_read_headers(ev.get("trailers"), "trailers"),
        request_body=_read_body(ev, "capturedRequestBody"),
        response_body=_read_body(ev, "capturedResponseBody"))


def _read_body(ev: dict[str, Any], name: str) -> CapturedBody | None:
    if name not in ev:
        return None
    try:
        return read_body_json(ev[name], name)
    except ValueError as e:
        raise BadEvent(str(e)) from None


_KINDS = {"requestInitEvent": _request, "responseInitEvent": _response,
          "responseEndEvent": _end}
