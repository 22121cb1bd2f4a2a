"""Tap events as the client hands them to the UI and the plain output.

A proxy reports each request it carries in up to three steps: the request
started (:class:`RequestInit`), the response started (:class:`ResponseInit`)
and the response ended or broke (:class:`ResponseEnd`). The client turns wire
messages into these frozen records, with every string already cleaned for
display (:mod:`meshtui.model.sanitize`).

:class:`RequestTracker` joins the steps of one request into a
:class:`Request` record, for ``top`` and the tap detail pane. :class:`TapMatch`
is the match a tap subscription carries (what ``--method``, ``--path`` and
``--authority`` ask for); the filter typed in the tap feed is in
:mod:`meshtui.model.feed_filter`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, NamedTuple

from meshtui.model.inventory import Workload
from meshtui.model.selectors import SHORT

Headers = tuple[tuple[str, str], ...]
#: The header a proxy of the mesh leads its own answers with, holding why it
#: refused or failed the request (400, 431, 502, 504, ...).
PROXY_ERROR_HEADER = "meshtui-proxy-error"
NOWHERE = Workload()  # a workload the mesh does not know
#: gRPC statuses that count as failures, as Linkerd's proxy classifies them:
#: Unknown, DeadlineExceeded, Internal, Unavailable, DataLoss. Any other status
#: (NotFound, InvalidArgument, ...) is the server answering as designed.
GRPC_FAILURES = frozenset({2, 4, 13, 14, 15})
#: Most bytes of one body tap may capture (``--capture-body``), and the proxies'
#: default ceiling (``--max-capture-body``), which no subscriber passes.
MAX_CAPTURE_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class CapturedBody:
    """The first bytes of a request's or response's body, as a proxy copied them.

    Attributes:
        data: the bytes, raw (shown escaped, hex or base64, never as they are).
        truncated: the body went on past ``data``.
        limit: bytes per body the proxy captured at, after its ceiling.
    """

    data: bytes
    truncated: bool = False
    limit: int = 0


class Direction(StrEnum):
    """Which side of its pod the proxy that saw a request sits on."""

    UNKNOWN = ""
    INBOUND = "inbound"
    OUTBOUND = "outbound"

    @property
    def short(self) -> str:
        """As tap lines print it: ``proxy=in`` / ``proxy=out``."""
        return {"inbound": "in", "outbound": "out"}.get(self.value, "?")

    @classmethod
    def parse(cls, text: str) -> Direction:
        """``in`` / ``inbound`` / ``OUTBOUND`` / … → Direction; ValueError otherwise."""
        t = text.strip().lower()
        for d in (cls.INBOUND, cls.OUTBOUND):
            if t in (d.value, d.short):
                return d
        raise ValueError(f"unknown direction {text!r}: use in or out")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a request: an address and, when the mesh knows it, its workload."""

    ip: str
    port: int
    workload: Workload = NOWHERE

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    @property
    def label(self) -> str:
        """The shortest name that says who this is: ``deploy/web``, ``po/web-1`` or the IP."""
        w = self.workload
        if w.deployment:
            return f"{SHORT['deployment']}/{w.deployment}"
        if w.pod:
            return f"{SHORT['pod']}/{w.pod}"
        return self.ip


def proxy_name(ep: Endpoint, inbound: bool) -> str:
    """What :attr:`TapEvent.proxy` calls the proxy at ``ep`` (the event's destination
    when ``inbound``, its source otherwise)."""
    if ep.workload.pod:
        return f"{ep.workload.namespace}/{ep.workload.pod}"
    return str(ep) if inbound else ep.ip


class StreamId(NamedTuple):
    """One request on one proxy: ``base`` is the connection, ``stream`` the request on it.

    A tuple, so that making and hashing one per event stays cheap.
    """

    base: int
    stream: int

    def __str__(self) -> str:
        return f"{self.base}:{self.stream}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TapEvent:
    """What every step of a request carries.

    Attributes:
        timestamp_us: wall clock when the proxy saw this step, µs since the epoch.
    """

    KIND: ClassVar[str] = ""

    source: Endpoint
    destination: Endpoint
    direction: Direction
    stream: StreamId
    timestamp_us: int
    tls: bool = False

    @property
    def proxy(self) -> str:
        """The proxy that saw the event: the destination's for inbound, the source's otherwise.

        Named by pod when known, else by address (an inbound destination's port
        is the app's, so it tells apart pods that share one IP).
        """
        inbound = self.direction is Direction.INBOUND
        return proxy_name(self.destination if inbound else self.source, inbound)

    @property
    def request_key(self) -> tuple[str, Direction, StreamId]:
        """What the three steps of one request share (stream ids are per proxy)."""
        return (self.proxy, self.direction, self.stream)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInit(TapEvent):
    """The request's head reached the proxy."""

    KIND: ClassVar[str] = "req"

    method: str
    scheme: str = ""
    authority: str = ""
    path: str = ""
    headers: Headers = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseInit(TapEvent):
    """The response's head came back.

    Attributes:
        latency_us: time from the request's start to the response's head.
    """

    KIND: ClassVar[str] = "rsp"

    status: int
    latency_us: int
    headers: Headers = ()

    @property
    def refused(self) -> bool:
        """Whether a proxy answered itself rather than pass the app's answer on (it
        puts its reason header first); the proxy counts that a failure whatever the
        status, 400 and 431 included."""
        return bool(self.headers) and self.headers[0][0] == PROXY_ERROR_HEADER


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseEnd(TapEvent):
    """The response finished, or the stream broke.

    Attributes:
        since_request_us: time from the request's start to this end.
        duration_us: time from the response's head to this end.
        grpc_status: the ``grpc-status`` trailer, when the response was gRPC.
        reset_code: set when the stream was reset or the connection broke.
    """

    KIND: ClassVar[str] = "end"

    since_request_us: int
    duration_us: int
    response_bytes: int = 0
    grpc_status: int | None = None
    reset_code: int | None = None
    trailers: Headers = ()
    request_body: CapturedBody | None = None
    response_body: CapturedBody | None = None


AnyEvent = RequestInit | ResponseInit | ResponseEnd


@dataclass(eq=False, slots=True)
class Request:
    """One request's steps joined, filled in as they arrive.

    Each step is set once. The record is shared, not copied, so that a feed
    line made from the request's first step can later be filtered or coloured
    by the status its response brought.
    """

    source: Endpoint
    destination: Endpoint
    direction: Direction
    stream: StreamId
    tls: bool = False
    init: RequestInit | None = None
    response: ResponseInit | None = None
    end: ResponseEnd | None = None

    @classmethod
    def of(cls, event: TapEvent) -> Request:
        """An empty record for the request ``event`` belongs to."""
        return cls(event.source, event.destination, event.direction, event.stream, event.tls)

    def has(self, event: TapEvent) -> bool:
        """Whether a step of this kind is already here."""
        return self._slot(event) is not None

    def add(self, event: TapEvent) -> None:
        """Sets the step ``event`` is."""
        if isinstance(event, RequestInit):
            self.init = event
        elif isinstance(event, ResponseInit):
            self.response = event
        elif isinstance(event, ResponseEnd):
            self.end = event
        else:
            raise TypeError(f"not a tap step: {type(event).__name__}")

    def _slot(self, event: TapEvent) -> TapEvent | None:
        if isinstance(event, RequestInit):
            return self.init
        if isinstance(event, ResponseInit):
            return self.response
        return self.end

    def events(self) -> Iterator[TapEvent]:
        """The steps seen so far, in order."""
        for ev in (self.init, self.response, self.end):
            if ev is not None:
                yield ev

    @property
    def method(self) -> str | None:
        return self.init.method if self.init else None

    @property
    def authority(self) -> str | None:
        return self.init.authority if self.init else None

    @property
    def path(self) -> str | None:
        return self.init.path if self.init else None

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def latency_us(self) -> int | None:
        """Time to the response's head (tap's ``latency=``)."""
        return self.response.latency_us if self.response else None

    @property
    def grpc_status(self) -> int | None:
        """The gRPC status the response ended with, when it was gRPC."""
        return self.end.grpc_status if self.end else None

    @property
    def response_bytes(self) -> int | None:
        """The response body's length, once it ended."""
        return self.end.response_bytes if self.end else None

    def header_values(self, name: str) -> list[str]:
        """Values of the request's and response's headers and trailers called ``name``
        (any letter case)."""
        name = name.lower()
        heads = (self.init.headers if self.init else (),
                 self.response.headers if self.response else (),
                 self.end.trailers if self.end else ())
        return [v for hs in heads for n, v in hs if n.lower() == name]

    @property
    def total_us(self) -> int | None:
        """Time to the response's end, else to its head: the whole exchange as far as seen."""
        return self.end.since_request_us if self.end else self.latency_us

    @property
    def started_us(self) -> int | None:
        """Wall clock of the first step seen, µs since the epoch."""
        first = next(self.events(), None)
        return first.timestamp_us if first else None

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def success(self) -> bool | None:
        """The proxy's classification, which ``stat`` counts: a reset, a failing gRPC
        status (:data:`GRPC_FAILURES`), a 5xx, or an answer the proxy made itself
        (a refusal) fails.

        None while nothing tells yet (no response, or only its end with neither
        a status nor a reset).
        """
        end, rsp = self.end, self.response
        if end is not None:
            if end.reset_code is not None or end.grpc_status in GRPC_FAILURES:
                return False
            if rsp is None and end.grpc_status is not None:
                return True
        if rsp is None:
            return None
        return rsp.status < 500 and not rsp.refused


@dataclass(frozen=True, slots=True)
class TapMatch:
    """What a tap subscription asks for; empty fields match anything.

    The one matcher of the mesh: proxies run it on every request a subscriber
    might see, and clients on the requests they hold. Method and authority
    compare without regard to letter case (kept upper- and lower-cased, so a
    check costs no conversion of the match), the path by prefix, workloads on
    every non-empty field.
    """

    method: str = ""
    path_prefix: str = ""
    authority: str = ""
    direction: Direction = Direction.UNKNOWN
    source: Workload = NOWHERE
    destination: Workload = NOWHERE

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "authority", self.authority.lower())

    def __bool__(self) -> bool:
        return any((self.method, self.path_prefix, self.authority, self.direction,
                    self.source, self.destination))

    @property
    def by_workload(self) -> bool:
        """Whether the match names a source or destination workload."""
        return bool(self.source or self.destination)

    def matches_request(self, direction: Direction, method: str, path: str,
                        authority: str) -> bool:
        """The checks that need no workload (a proxy does them before it builds anything)."""
        if self.direction and direction is not self.direction:
            return False
        if self.method and method.upper() != self.method:
            return False
        if self.path_prefix and not path.startswith(self.path_prefix):
            return False
        return not self.authority or authority.lower() == self.authority

    def matches_workloads(self, source: Workload, destination: Workload) -> bool:
        return (_workload_matches(self.source, source)
                and _workload_matches(self.destination, destination))

    def matches(self, request: Request | RequestInit) -> bool:
        """Whether the request is one this match asks for (a request not yet seen starting
        matches only an empty match)."""
        init = request.init if isinstance(request, Request) else request
        if not self:
            return True
        if init is None:
            return False
        return (self.matches_request(init.direction, init.method, init.path, init.authority)
                and self.matches_workloads(init.source.workload, init.destination.workload))


def _workload_matches(want: Workload, have: Workload) -> bool:
    return (
        (not want.namespace or want.namespace == have.namespace)
        and (not want.deployment or want.deployment == have.deployment)
        and (not want.pod or want.pod == have.pod)
    )


@dataclass(slots=True)
class RequestTracker:
    """Joins steps into :class:`Request` records, holding at most ``capacity`` unfinished.

    A request leaves the tracker when its end arrives. When the tracker is
    full the oldest unfinished request is let go (its later steps start a new,
    partial record) and counted in ``evicted``; so is one whose stream id
    comes back with a step it already has (its proxy restarted).

    Attributes:
        evicted: records let go before their end arrived.
        completed: records whose end arrived.
    """

    capacity: int = 10_000
    evicted: int = 0
    completed: int = 0
    _open: dict[tuple[str, Direction, StreamId], Request] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")

    def __len__(self) -> int:
        """Unfinished requests held."""
        return len(self._open)

    def open_ids(self) -> set[int]:
        """``id()`` of every unfinished record held (to tell which ones were let go)."""
        return {id(r) for r in self._open.values()}

    def observe(self, event: TapEvent) -> Request:
        """Adds a step; returns the (shared, possibly still partial) record it belongs to."""
        key = event.request_key
        req = self._open.get(key)
        if req is not None and req.has(event):
            del self._open[key]
            self.evicted += 1
            req = None
        if req is None:
            req = Request.of(event)
            if not isinstance(event, ResponseEnd):
                while len(self._open) >= self.capacity:
                    del self._open[next(iter(self._open))]
                    self.evicted += 1
                self._open[key] = req
        req.add(event)
        if isinstance(event, ResponseEnd):
            self._open.pop(key, None)
            self.completed += 1
        return req
