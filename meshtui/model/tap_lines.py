"""Lines of ``tap -o json`` decoded by msgspec and kept as they are: a replay's steps.

A replay holds up to a million events. Making each a model event as it is read
(every string cleaned, every header judged for redaction, a frozen record built)
cost three times what decoding it does, for lines most of which are never looked
at. So a line in the shape ``tap -o json`` writes is decoded and checked by
msgspec in one pass into a :class:`Line`, which keeps the decoded step and
answers what joining requests and filtering the feed ask (its request's key,
status, latency, method, path, authority, headers by name); it becomes the model
event the general reader (:mod:`meshtui.model.tap_json`) would have made,
cleaned and redacted alike, only when it is drawn, filtered or opened
(:meth:`Line.event`). The live feed does the same with wire steps
(``meshtui.client.tap_wire``).

Each type here refuses what the general reader refuses (a bool is not a number,
a range is a range); a line that does not fit is left to the general reader,
never accepted here on looser terms. They are structs the garbage collector does
not track (``gc=False``): a million of them would otherwise be walked by every
full collection, for nothing, since none can be part of a cycle (they hold text,
numbers, each other and shared endpoints).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import msgspec

from meshtui.model.bodies import read_body_json
from meshtui.model.inventory import Workload
from meshtui.model.redact import REDACTED, REDACTED_BYTES, active
from meshtui.model.sanitize import clean, clean_bytes
from meshtui.model.tap import (
    CapturedBody,
    Direction,
    Endpoint,
    Headers,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    StreamId,
    TapEvent,
    proxy_name,
)

DIRECTIONS = {"INBOUND": Direction.INBOUND, "OUTBOUND": Direction.OUTBOUND,
              "UNKNOWN": Direction.UNKNOWN}
MAX_INT = 2**63 - 1
#: Endpoints remembered per reader (ephemeral ports could make them many).
MAX_ENDPOINTS = 100_000

_U63 = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]
_U32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]


def decode_headers(pairs: list[tuple[str, str | bytes]] | None) -> Headers:
    """Headers (or trailers) read from a file, as (name, value) already checked, a
    value as text (``valueStr``) or bytes (``valueBin``): every header a replay shows
    passes through here, and only here."""
    if not pairs:
        return ()
    value = active().value  # a saved file may hold what a careless proxy let through
    return tuple((clean(n), clean(value(n, v, REDACTED)) if isinstance(v, str)
                  else clean_bytes(value(n, v, REDACTED_BYTES))) for n, v in pairs)



class _JMeta(msgspec.Struct, gc=False):
    namespace: str = ""
    deployment: str = ""
    pod: str = ""


_NO_META = _JMeta()


class _JEndpoint(msgspec.Struct, gc=False):
    ip: str
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)]
    metadata: _JMeta | None = None


class _JId(msgspec.Struct, gc=False):
    base: _U63 = 0
    stream: _U63 = 0


class _JDuration(msgspec.Struct, gc=False):
    seconds: Annotated[int, msgspec.Meta(ge=0, le=10**12)] = 0
    nanos: Annotated[int, msgspec.Meta(ge=0, le=999_999_999)] = 0

    @property
    def us(self) -> int:
        return self.seconds * 1_000_000 + self.nanos // 1000


class _JHeader(msgspec.Struct, gc=False):
    name: str
    valueStr: str = ""
    valueBin: bytes | None = None  # a value that is not UTF-8 (base64, checked by msgspec)

    def value(self) -> str | bytes:
        return self.valueStr if self.valueBin is None else self.valueBin


# A tuple, not a list: a tuple of untracked structs leaves the collector's sight too.
_JHeaders = tuple[_JHeader, ...] | None


def _pairs(hs: _JHeaders) -> list[tuple[str, str | bytes]] | None:
    return None if hs is None else [(h.name, h.value()) for h in hs]


class _JRequest(msgspec.Struct, gc=False):
    id: _JId
    method: str = ""
    scheme: str = ""
    authority: str = ""
    path: str = ""
    headers: _JHeaders = None


class _JResponse(msgspec.Struct, gc=False):
    id: _JId
    httpStatus: Annotated[int, msgspec.Meta(ge=0, le=999)]
    sinceRequestInit: _JDuration = msgspec.field(default_factory=_JDuration)
    headers: _JHeaders = None


class _JEnd(msgspec.Struct, gc=False):
    id: _JId
    sinceRequestInit: _JDuration = msgspec.field(default_factory=_JDuration)
    sinceResponseInit: _JDuration = msgspec.field(default_factory=_JDuration)
    responseBytes: _U63 = 0
    grpcStatusCode: _U32 | None = None
    resetErrorCode: _U32 | None = None
    trailers: _JHeaders = None
    # Checked by the model's body reader, as on the general path.
    capturedRequestBody: Any = msgspec.UNSET
    capturedResponseBody: Any = msgspec.UNSET


class _JLine(msgspec.Struct, gc=False):
    # Endpoints as their bytes: the same few repeat on every line, and are decoded
    # (and checked) once each (LineDecoder).
    source: msgspec.Raw
    destination: msgspec.Raw
    proxyDirection: str
    timestampUs: _U63 = 0
    tls: Any = False
    requestInitEvent: _JRequest | msgspec.UnsetType = msgspec.UNSET
    responseInitEvent: _JResponse | msgspec.UnsetType = msgspec.UNSET
    responseEndEvent: _JEnd | msgspec.UnsetType = msgspec.UNSET


_decode_line = msgspec.json.Decoder(_JLine).decode
_decode_endpoint = msgspec.json.Decoder(_JEndpoint).decode


@functools.lru_cache(maxsize=4096)
def _lower_name(raw: str) -> str:
    """A header's name as a filter compares it; names repeat, so each is cleaned once."""
    return clean(raw).lower()


class Line(msgspec.Struct, gc=False):
    """One step read from a file, kept as msgspec decoded it.

    ``slot`` says which step: 0 the request's start, 1 the response's, 2 its end.
    Endpoints are the model's (shared, cleaned); everything else is as the file
    had it, and is cleaned (and redacted) whenever it is read.
    """

    source: Endpoint
    destination: Endpoint
    direction: Direction
    proxy: str  # as TapEvent.proxy names it
    timestamp_us: int
    tls: bool
    slot: int
    detail: _JRequest | _JResponse | _JEnd

    @property
    def request_key(self) -> tuple[object, ...]:
        """Equal to its model event's ``request_key`` (a StreamId is a tuple), so
        that lines and model events of one request join."""
        sid = self.detail.id
        return (self.proxy, self.direction, (sid.base, sid.stream))

    @property
    def has_bodies(self) -> bool:
        d = self.detail
        return type(d) is _JEnd and (d.capturedRequestBody is not msgspec.UNSET
                                     or d.capturedResponseBody is not msgspec.UNSET)

    # ---- what a join or a feed filter reads, without making the model event ----------

    @property
    def status(self) -> int | None:
        d = self.detail
        return d.httpStatus if type(d) is _JResponse else None

    @property
    def latency_us(self) -> int | None:
        d = self.detail
        return d.sinceRequestInit.us if type(d) is _JResponse else None

    @property
    def grpc_status(self) -> int | None:
        d = self.detail
        return d.grpcStatusCode if type(d) is _JEnd else None

    @property
    def response_bytes(self) -> int | None:
        d = self.detail
        return d.responseBytes if type(d) is _JEnd else None

    def text(self, field: str) -> str:
        """The request's ``method``, ``scheme``, ``authority`` or ``path``, cleaned,
        and for the last two redacted (userinfo, secret query values)."""
        d = self.detail
        if type(d) is not _JRequest:
            return ""
        text = clean(getattr(d, field))
        if field == "path":
            return active().path(text)
        if field == "authority":
            return active().authority(text)
        return text

    def header_values(self, name: str) -> list[str]:
        """Values of the headers (or trailers) called ``name`` (lower case), cleaned and
        redacted as :meth:`event` makes them; only those values are decoded."""
        d = self.detail
        hs = d.trailers if type(d) is _JEnd else d.headers  # type: ignore[union-attr]
        if not hs:
            return []
        return [v for _, v in decode_headers([(h.name, h.value()) for h in hs
                                              if _lower_name(h.name) == name])]

    def event(self) -> TapEvent:
        """The model event, as the general reader makes it of the same line.
        ValueError when a captured body is not one (checked as the line is read)."""
        d = self.detail
        stream = StreamId(d.id.base, d.id.stream)
        if type(d) is _JRequest:
            return RequestInit(source=self.source, destination=self.destination,
                               direction=self.direction, stream=stream,
                               timestamp_us=self.timestamp_us, tls=self.tls,
                               method=self.text("method"), scheme=self.text("scheme"),
                               authority=self.text("authority"), path=self.text("path"),
                               headers=decode_headers(_pairs(d.headers)))
        if type(d) is _JResponse:
            return ResponseInit(source=self.source, destination=self.destination,
                                direction=self.direction, stream=stream,
                                timestamp_us=self.timestamp_us, tls=self.tls,
                                status=d.httpStatus, latency_us=d.sinceRequestInit.us,
                                headers=decode_headers(_pairs(d.headers)))
        assert type(d) is _JEnd
        return ResponseEnd(source=self.source, destination=self.destination,
                           direction=self.direction, stream=stream,
                           timestamp_us=self.timestamp_us, tls=self.tls,
                           since_request_us=d.sinceRequestInit.us,
                           duration_us=d.sinceResponseInit.us, response_bytes=d.responseBytes,
                           grpc_status=d.grpcStatusCode, reset_code=d.resetErrorCode,
                           trailers=decode_headers(_pairs(d.trailers)),
                           request_body=_body(d.capturedRequestBody, "capturedRequestBody"),
                           response_body=_body(d.capturedResponseBody, "capturedResponseBody"))


def _body(v: Any, name: str) -> CapturedBody | None:
    return None if v is msgspec.UNSET else read_body_json(v, name)


class LineDecoder:
    """Reads lines into :class:`Line`; endpoints repeat, so each is decoded once."""

    def __init__(self) -> None:
        self._endpoints: dict[bytes, tuple[Endpoint, str, str]] = {}

    def decode(self, line: str | bytes) -> Line | None:
        """The line's step; None for a line msgspec cannot read in ``tap -o json``'s
        shape, or cannot judge alone (an unknown direction, no step): the general
        reader decides those, and says why one is bad."""
        try:
            j = _decode_line(line)
            direction = DIRECTIONS.get(j.proxyDirection)
            if direction is None:
                return None
            src, _, src_out = self._endpoint(j.source)
            dst, dst_in, _ = self._endpoint(j.destination)
        except (msgspec.DecodeError, RecursionError):
            return None
        detail: Any = j.requestInitEvent
        slot = 0
        if detail is msgspec.UNSET:
            detail, slot = j.responseInitEvent, 1
            if detail is msgspec.UNSET:
                detail, slot = j.responseEndEvent, 2
                if detail is msgspec.UNSET:
                    return None
        proxy = dst_in if direction is Direction.INBOUND else src_out
        return Line(src, dst, direction, proxy, j.timestampUs, j.tls is True, slot, detail)

    def _endpoint(self, raw: msgspec.Raw) -> tuple[Endpoint, str, str]:
        """The endpoint, and what its proxy is called on an inbound and on any other
        step. Raises msgspec.DecodeError for one that is not an endpoint."""
        key = bytes(raw)
        hit = self._endpoints.get(key)
        if hit is None:
            e = _decode_endpoint(key)
            m = e.metadata or _NO_META
            ep = Endpoint(clean(e.ip), e.port,
                          Workload(clean(m.namespace), clean(m.deployment), clean(m.pod)))
            hit = (ep, proxy_name(ep, True), proxy_name(ep, False))
            if len(self._endpoints) < MAX_ENDPOINTS:
                self._endpoints[key] = hit
        return hit
