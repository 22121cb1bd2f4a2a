"""Tap fan-out: matching, rate limiting, bounded per-subscriber queues, batches.

The data path hands the hub plain tuples; protobuf messages are built only by a
subscriber's own stream, a batch at a time, so events nobody reads (dropped on a
full queue) cost next to nothing. The data path never waits: a full queue drops
the event and counts it, and the next batch reports the count in ``dropped``.

Everything here runs on the proxy's one asyncio loop (the subscriber's wake-up
is an :class:`asyncio.Event`), so no locks are needed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from meshtui.model.inventory import Workload
from meshtui.model.redact import DEFAULT as DEFAULT_REDACTOR
from meshtui.model.redact import REDACTED as REDACTED_TEXT
from meshtui.model.redact import Redactor
from meshtui.model.tap import MAX_CAPTURE_BODY, Direction, TapMatch
from meshtui.v1 import common_pb2, proxy_pb2

#: Header values tap shows as this unless secrets are shown (see meshtui.model.redact).
REDACTED = REDACTED_TEXT.encode()

# Event kinds, the first item of every queued tuple.
REQUEST_INIT = 0
RESPONSE_INIT = 1
RESPONSE_END = 2


#: Most bytes of captured bodies one subscriber's queue holds (its queue admits
#: fewer requests when it captures bodies: 128 requests at 64 KiB each way). Counted
#: exactly: a request ending past it is queued without its bodies.
BODY_QUEUE_BYTES = 16 << 20
#: Most bytes of bodies being captured by requests still under way, all subscribers
#: together: past it, a request is tapped without its bodies (a slow upload each at
#: 64 KiB, thousands at once, would otherwise hold their copies all together).
BODY_INFLIGHT_BYTES = 64 << 20


def _keep_freed_memory() -> None:
    """Lets the allocator reuse freed body copies instead of returning them to the
    system: the pieces copied (a cut piece, HTTP/2 frames' data) are fresh buffers of
    up to 64 KiB, whose page faults otherwise cost more than the copy (glibc only;
    elsewhere nothing changes). Called with the first subscriber that asks for
    bodies, so a proxy nobody asks is untouched."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: body buffers from the heap
        libc.mallopt(-1, 2 * BODY_QUEUE_BYTES)  # M_TRIM_THRESHOLD: kept for reuse
    except (OSError, AttributeError):
        pass


class TapLimitError(Exception):
    """Too many subscribers already; the caller should refuse the new one."""


class TapRequest:
    """What every event of one tapped request shares; built only when someone taps."""

    __slots__ = (
        "authority", "conn_id", "direction", "dst", "dst_wl", "headers", "method",
        "path", "scheme", "src", "src_wl", "stream", "template", "tls", "wall0_us",
    )

    def __init__(
        self, direction: int, src: tuple[str, int], src_wl: Workload,
        dst: tuple[str, int], dst_wl: Workload, conn_id: int, stream: int, method: str,
        scheme: str, authority: str, path: str, headers: list[tuple[bytes, bytes]],
        wall0_us: int, tls: bool = False,
    ) -> None:
        self.direction = direction
        self.tls = tls  # the connection it came over was mutual TLS
        self.src = src
        self.src_wl = src_wl
        self.dst = dst
        self.dst_wl = dst_wl
        self.conn_id = conn_id
        self.stream = stream
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.headers = headers
        self.wall0_us = wall0_us
        self.template: common_pb2.TapEvent | None = None


#: The wire's directions as the model's (what a :class:`TapMatch` compares).
DIRECTIONS: dict[int, Direction] = {common_pb2.INBOUND: Direction.INBOUND,
                                   common_pb2.OUTBOUND: Direction.OUTBOUND}


def match_of(match: common_pb2.TapMatch | None) -> TapMatch:
    """A subscription's wire match as the model's matcher."""
    if match is None:
        return TapMatch()

    def workload(has: bool, w: common_pb2.Workload) -> Workload:
        return Workload(w.namespace, w.deployment, w.pod) if has else Workload()

    return TapMatch(match.method, match.path_prefix, match.authority,
                    DIRECTIONS.get(match.direction, Direction.UNKNOWN),
                    workload(match.HasField("source"), match.source),
                    workload(match.HasField("destination"), match.destination))


class Subscriber:
    """One tap stream: its filter, its token bucket and its bounded queue.

    Attributes:
        dropped: events lost so far because the queue was full (cumulative).
        limited: requests skipped by the rate limit (not losses: the subscriber asked).
        delivered: events handed to the stream so far.
    """

    __slots__ = (
        "body_bytes", "burst", "capacity", "capture", "closed", "delivered", "dropped",
        "filter", "last", "limited", "queue", "rate", "reported", "tokens", "wake",
    )

    def __init__(self, filt: TapMatch, max_rps: float, capacity: int, now: float,
                 capture: int = 0) -> None:
        self.filter = filt
        #: Bytes of each body this subscriber sees (0: none), already within the ceiling.
        self.capture = capture
        #: Bytes of bodies its queue holds now (at most BODY_QUEUE_BYTES).
        self.body_bytes = 0
        self.rate = max_rps
        # A one-second burst lets a subscriber see the start of a spike at all.
        self.burst = max(1.0, max_rps)
        self.tokens = self.burst
        self.last = now
        self.capacity = capacity
        self.queue: deque[tuple[Any, ...]] = deque()
        self.dropped = 0
        self.reported = 0
        self.limited = 0
        self.delivered = 0
        self.closed = False
        self.wake = asyncio.Event()

    def take_token(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.limited += 1
        return False


class TapHub:
    """Tap subscribers of one proxy.

    Args:
        clock: monotonic seconds, for the rate limits.
        show_secrets: when False (the default), what :mod:`meshtui.model.redact`
            judges secret (credential headers and trailers, secret query parameters,
            userinfo) is replaced by ``<redacted>``; True shows everything.
        redactor: the names to redact (default: the model's defaults).
        queue_capacity: events a subscriber may have waiting before new requests
            are dropped for it: two seconds of what the CPU budget lets a stream
            send, and each held event keeps its request's headers in memory. The
            later events of requests already admitted still go in (a request's
            events travel together), so a queue may pass this by two events per
            request in flight, and never passes twice this.
        max_batch: most events in one :class:`TapBatch`.
        max_batch_bytes: a batch stops growing once its events pass this size.
        max_subscribers: more than this many open streams are refused.
        linger: seconds a woken stream waits for more events before sending, so a
            busy proxy sends fewer, fuller batches.
        cpu_share: most of the wall clock that building (and encoding) batches may
            take, all streams together; 0 for no bound.
        max_capture_body: the most bytes of a body any subscriber may capture; a
            subscriber asking more gets this much (and sees the limit in its events).
    """

    def __init__(
        self, clock: Callable[[], float], *, show_secrets: bool = False,
        redactor: Redactor = DEFAULT_REDACTOR,
        queue_capacity: int = 4_000, max_batch: int = 2_000, max_subscribers: int = 64,
        linger: float = 0.005, max_batch_bytes: int = 1 << 20, cpu_share: float = 0.02,
        max_capture_body: int = MAX_CAPTURE_BODY,
    ) -> None:
        self.max_capture_body = max(0, max_capture_body)
        self._malloc_tuned = False
        #: Requests under way that capture bodies, and the most bytes they may hold.
        self.capturing = 0
        self.capturing_bytes = 0
        self.clock = clock
        self.show_secrets = show_secrets
        self.redactor: Redactor | None = None if show_secrets else redactor
        self.queue_capacity = max(3, queue_capacity)
        self.max_batch = max(1, max_batch)
        self.max_batch_bytes = max(1, max_batch_bytes)
        self.max_subscribers = max_subscribers
        self.linger = linger
        #: Open subscribers; replaced, never mutated, so the data path may iterate it.
        self.subscribers: tuple[Subscriber, ...] = ()
        #: Events lost by subscribers that have since gone (kept for /metrics).
        self.dropped_gone = 0
        self.cpu_share = max(0.0, cpu_share)
        # The budget, in seconds of building: earned at cpu_share a second, spent by
        # every batch built, kept to a small burst so an idle while earns no flood.
        self._burst = max(0.002, 0.25 * self.cpu_share)
        self._credit = self._burst
        self._earned_at = time.perf_counter()
        self._event_cost = 10e-6  # seconds to build and encode one event (a running mean)
        #: Seconds streams spent waiting for the budget (for benchmarks and tests).
        self.budget_waits = 0.0
        # ``gen`` changes whenever a queue shrinks or the subscribers change; in
        # between, queues only grow. So once :meth:`all_full` has found every
        # subscriber full, it stays so until ``gen`` moves: ``full_gen == gen``
        # lets the data path skip the check while a subscriber is stuck.
        self.gen = 0
        self.full_gen = -1

    # --- subscription ------------------------------------------------------

    def subscribe(
        self, match: common_pb2.TapMatch | None = None, max_rps: float = 0.0,
        capture_body: int = 0,
    ) -> Subscriber:
        """Opens a subscriber; raises TapLimitError when too many are open,
        ValueError for a negative or non-finite ``max_rps``. ``capture_body`` is
        clamped to the hub's ceiling."""
        if not math.isfinite(max_rps) or max_rps < 0:
            raise ValueError(f"max_rps must be a finite number >= 0, got {max_rps}")
        if len(self.subscribers) >= self.max_subscribers:
            raise TapLimitError(f"{self.max_subscribers} tap streams are open already")
        capture = min(max(0, capture_body), self.max_capture_body)
        capacity = self.queue_capacity
        if capture:
            # Each queued request may hold two bodies: bound the bytes, not just events.
            capacity = min(capacity, 3 * max(1, BODY_QUEUE_BYTES // (2 * capture)))
            if not self._malloc_tuned:
                self._malloc_tuned = True
                _keep_freed_memory()
        sub = Subscriber(match_of(match), max_rps, capacity, self.clock(), capture)
        self.subscribers = (*self.subscribers, sub)
        self.gen += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Closes a subscriber (idempotent); its stream ends."""
        if sub in self.subscribers:
            self.subscribers = tuple(s for s in self.subscribers if s is not sub)
            self.dropped_gone += sub.dropped
        sub.closed = True
        self.gen += 1
        sub.wake.set()

    def close(self) -> None:
        """Ends every stream (proxy shutdown)."""
        for sub in self.subscribers:
            self.unsubscribe(sub)

    @property
    def dropped_total(self) -> int:
        """Events lost on full queues, by every subscriber there ever was."""
        return self.dropped_gone + sum(s.dropped for s in self.subscribers)

    # --- the data path's side ---------------------------------------------

    def candidates(
        self, direction: int, method: str, path: str, authority: str
    ) -> list[Subscriber]:
        """Subscribers whose filter this request may match (workloads still unchecked).

        Cheap, and called before any tap object is built: a tap filtered to other
        traffic costs the data path little more than this loop.
        """
        path, authority = self._as_shown(path, authority)
        return [s for s in self.subscribers
                if s.filter.matches_request(DIRECTIONS.get(direction, Direction.UNKNOWN),
                                            method, path, authority)]

    def _as_shown(self, path: str, authority: str) -> tuple[str, str]:
        """The path and authority as subscribers will see them: a filter on the raw
        ones would tell, by what it lets through, a secret it never shows (a prefix
        ``/login?token=s3`` would find out a token one character at a time)."""
        red = self.redactor
        if red is None:
            return path, authority
        return red.path(path), red.authority(authority)

    def all_full(self) -> bool:
        """True when every subscriber would drop any request now, whatever its
        source or destination: each has no room for a request's three events, no
        rate limit that might skip it instead, and no workload in its filter."""
        if self.full_gen == self.gen:
            return True
        for sub in self.subscribers:
            if len(sub.queue) + 3 <= sub.capacity or sub.rate > 0 or sub.closed \
                    or sub.filter.by_workload:
                return False
        self.full_gen = self.gen
        return True

    def lose(self, direction: int, method: str, path: str, authority: str
             ) -> list[Subscriber]:
        """While :meth:`all_full`: counts the request-init event of a request as lost
        for every subscriber it matches, and returns them (they lose its later
        events too), as :meth:`admit` would."""
        d = DIRECTIONS.get(direction, Direction.UNKNOWN)
        path, authority = self._as_shown(path, authority)
        lost = [s for s in self.subscribers
                if s.filter.matches_request(d, method, path, authority)]
        for sub in lost:
            sub.dropped += 1
        return lost

    def admit(
        self, req: TapRequest | Callable[[], TapRequest],
        candidates: Sequence[Subscriber] | None = None,
        workloads: tuple[Workload, Workload] | None = None,
    ) -> tuple[TapRequest | None, list[Subscriber], list[Subscriber]]:
        """Decides, once per request, who sees it; queues its request-init event.

        Returns (the request, taking, losing): ``taking`` get this request's later
        events; ``losing`` wanted it but had no room for all three events, so each
        of its events is counted as dropped for them instead. A request takes one
        token of a subscriber's rate limit, and is admitted only with room for its
        three events, so a subscriber sees all of a request's events or none.

        ``req`` may be a function that builds the request, with ``workloads`` its
        (source, destination) workloads: it is then called only if someone takes
        the request, so a request every subscriber loses (their queues full)
        builds nothing, and the request returned is None.
        """
        taking: list[Subscriber] = []
        losing: list[Subscriber] = []
        now = self.clock()
        built = req if isinstance(req, TapRequest) else None
        if workloads is None:
            assert built is not None, "a request builder needs its workloads"
            workloads = (built.src_wl, built.dst_wl)
        src_wl, dst_wl = workloads
        if candidates is None:
            assert built is not None, "a request builder needs its candidates"
            candidates = self.candidates(built.direction, built.method, built.path,
                                         built.authority)
        ev: tuple[Any, ...] | None = None
        for sub in candidates:
            if sub.closed or not sub.filter.matches_workloads(src_wl, dst_wl):
                continue
            if not sub.take_token(now):
                continue
            if len(sub.queue) + 3 > sub.capacity:
                sub.dropped += 1
                losing.append(sub)
                continue
            if ev is None:
                if built is None:
                    built = req() if callable(req) else req
                ev = (REQUEST_INIT, built.wall0_us, built)
            taking.append(sub)
            sub.queue.append(ev)
            if not sub.wake.is_set():
                sub.wake.set()
        return built, taking, losing

    @staticmethod
    def emit(taking: Sequence[Subscriber], ev: tuple[Any, ...]) -> None:
        """Queues a later event of an admitted request."""
        size = _bodies_size(ev)
        bare: tuple[Any, ...] | None = None
        for sub in taking:
            # Admission left room for this event; the hard cap only guards a
            # queue flooded by many admitted requests all still in flight.
            if sub.closed or len(sub.queue) >= 2 * sub.capacity:
                sub.dropped += 1
                continue
            queued = ev
            if size:
                if not sub.capture or sub.body_bytes + size > BODY_QUEUE_BYTES:
                    # It asked for no bodies, or its queue holds all it may: this end
                    # goes without them (so its queue keeps none alive).
                    queued = bare = bare or (*ev[:-1], None)
                else:
                    sub.body_bytes += size
            sub.queue.append(queued)
            if not sub.wake.is_set():
                sub.wake.set()

    # --- the subscriber's side --------------------------------------------

    async def batches(
        self, sub: Subscriber, encode: Callable[[proxy_pb2.TapBatch], Any] | None = None
    ) -> AsyncIterator[Any]:
        """The subscriber's stream: a batch whenever events or losses are pending,
        until the subscriber is closed; ``encode(batch)`` instead of the batch when
        given (its time counts against the CPU budget too)."""
        while not sub.closed:
            if not sub.queue and sub.dropped == sub.reported:
                sub.wake.clear()
                await sub.wake.wait()
                if sub.closed:
                    break
                if self.linger > 0 and len(sub.queue) < self.max_batch:
                    await asyncio.sleep(self.linger)
            if self.cpu_share > 0:
                wait = self._overdrawn()
                if wait > 0:
                    self.budget_waits += wait
                    await asyncio.sleep(wait)
                    if sub.closed:
                        break
            # A batch no longer than the burst takes to build: the traffic waits on
            # the loop for one build at a time, ~5 ms at most rather than 2000 events.
            limit = max(16, int(self._burst / self._event_cost)) if self.cpu_share > 0 else None
            t0 = time.perf_counter()
            batch = self.take_batch(sub, limit)
            out = batch if encode is None else encode(batch)
            spent = time.perf_counter() - t0
            self._credit -= spent
            if len(batch.events) >= 16:
                self._event_cost = 0.8 * self._event_cost + 0.2 * spent / len(batch.events)
            yield out

    def _overdrawn(self) -> float:
        """Seconds until the budget is no longer overdrawn (0: build now)."""
        now = time.perf_counter()
        self._credit = min(self._burst,
                           self._credit + (now - self._earned_at) * self.cpu_share)
        self._earned_at = now
        return -self._credit / self.cpu_share if self._credit < 0 else 0.0

    def take_batch(self, sub: Subscriber, limit: int | None = None) -> proxy_pb2.TapBatch:
        """Removes up to ``max_batch`` (and ``limit``) queued events, and about
        ``max_batch_bytes``, and builds their message."""
        q = sub.queue
        self.gen += 1  # the queue shrinks: all_full() must look again
        most = self.max_batch if limit is None else min(limit, self.max_batch)
        redact = self.redactor
        batch = proxy_pb2.TapBatch()
        events = batch.events
        n = size = 0
        # Headers may be large (up to 60 KiB a request): a byte bound keeps every
        # message well under gRPC's default 4 MiB receive limit.
        while q and n < most and size < self.max_batch_bytes:
            ev = events.add()  # filled in place: nested keyword messages would be copied
            queued = q.popleft()
            if sub.body_bytes and queued[0] == RESPONSE_END:
                sub.body_bytes -= _bodies_size(queued)
            fill_event(ev, queued, redact, sub.capture)
            size += ev.ByteSize()
            n += 1
        sub.delivered += n
        batch.dropped = sub.dropped - sub.reported
        sub.reported = sub.dropped
        return batch


def _bodies_size(ev: tuple[Any, ...]) -> int:
    """Bytes of captured bodies a queued event holds (0 for all but a captured end)."""
    if ev[0] != RESPONSE_END or ev[-1] is None:
        return 0
    req, _, resp = ev[-1]
    return sum(map(len, req)) + sum(map(len, resp))


# --- protobuf building (the subscriber's stream only) ---------------------


def _add_headers(
    dst: Any, pairs: list[tuple[bytes, bytes]] | None, redact: Redactor | None
) -> None:
    if redact is None:
        for name, value in pairs or ():
            h = dst.add()
            h.name = name.decode("latin-1")
            h.value = value
        return
    known, secret = redact.known, redact.secret
    url_known, url_header = redact.url_known, redact.url_header
    for name, value in pairs or ():
        h = dst.add()
        h.name = name.decode("latin-1")
        hit = known(name)
        if hit is None:
            hit = secret(name)
        if hit:
            h.value = REDACTED
            continue
        url = url_known(name)
        if url is None:
            url = url_header(name)
        h.value = redact.url(value) if url else value


def _template(req: TapRequest) -> common_pb2.TapEvent:
    """The fields every event of a request shares, built once per tapped request."""
    t = common_pb2.TapEvent(proxy_direction=req.direction, tls=req.tls)  # type: ignore[arg-type]
    for ep, (ip, port), wl in ((t.source, req.src, req.src_wl),
                               (t.destination, req.dst, req.dst_wl)):
        ep.ip = ip
        ep.port = port
        ep.workload.namespace = wl.namespace
        ep.workload.deployment = wl.deployment
        ep.workload.pod = wl.pod
    t.id.base = req.conn_id
    t.id.stream = req.stream
    return t


def _add_body(out: common_pb2.CapturedBody, pieces: list[bytes], total: int, limit: int
              ) -> None:
    data = b"".join(pieces)
    out.data = data[:limit]
    out.truncated = total > limit
    out.limit = limit


def fill_event(out: common_pb2.TapEvent, ev: tuple[Any, ...],
               redact: Redactor | None = DEFAULT_REDACTOR, capture: int = 0) -> None:
    """Writes one queued event tuple into a TapEvent message; ``capture``: bytes of
    each body the subscriber asked for (the request captured at least as many)."""
    kind, ts_us, req = ev[0], ev[1], ev[2]
    if req.template is None:
        req.template = _template(req)
    out.MergeFrom(req.template)
    out.timestamp_us = ts_us
    if kind == REQUEST_INIT:
        init = out.request_init
        init.method = req.method
        init.scheme = req.scheme
        if redact is None:
            init.authority = req.authority
            init.path = req.path
        else:
            init.authority = redact.authority(req.authority)
            init.path = redact.path(req.path)
        _add_headers(init.headers, req.headers, redact)
    elif kind == RESPONSE_INIT:
        _, _, _, since_req, status, headers = ev
        resp = out.response_init
        resp.since_request_init_us = since_req
        resp.http_status = status
        _add_headers(resp.headers, headers, redact)
    else:
        _, _, _, since_req, since_resp, nbytes, grpc_status, reset_code, trailers, bodies = ev
        end = out.response_end
        if capture and bodies is not None:
            req_data, req_total, resp_data = bodies
            _add_body(end.request_body, req_data, req_total, capture)
            _add_body(end.response_body, resp_data, nbytes, capture)
        end.since_request_init_us = since_req
        end.since_response_init_us = since_resp
        end.response_bytes = nbytes
        if reset_code is not None:
            end.reset_error_code = reset_code
        elif grpc_status is not None:
            end.grpc_status_code = grpc_status
        _add_headers(end.trailers, trailers, redact)


def build_event(ev: tuple[Any, ...],
                redact: Redactor | None = DEFAULT_REDACTOR) -> common_pb2.TapEvent:
    """One queued event tuple → its TapEvent message."""
    out = common_pb2.TapEvent()
    fill_event(out, ev, redact)
    return out
