"""What every connection of one proxy shares.

A :class:`ProxyContext` holds one proxy's shared state: the telemetry recorder,
the upstream pool, the in-flight count that turns into 503s, the protocol error
counters, and the sweeper — one periodic task that enforces every connection's
timeouts, so that no request pays for a timer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any, Protocol

from meshtui.proxy.config import Timeouts
from meshtui.proxy.pool import Pool


class Swept(Protocol):
    """A connection as the sweeper and shutdown see it."""

    transport: Any

    def tick(self, now: float) -> None: ...
    def drain(self) -> None: ...


class ProxyContext:
    """What every connection of one proxy shares.

    Args:
        telemetry: the recorder (``meshtui.proxy.telemetry.Telemetry`` or the same shape).
        timeouts: the proxy's timeouts.
        pool: upstream connections.
        max_in_flight: requests under way at once before new ones get 503.
    """

    def __init__(self, telemetry: Any, timeouts: Timeouts, pool: Pool,
                 max_in_flight: int = 10_000) -> None:
        self.telemetry = telemetry
        self.timeouts = timeouts
        self.pool = pool
        self.max_in_flight = max_in_flight
        #: HTTP/2 streams tracked at once per connection; more are relayed, untracked.
        self.max_streams = 1000
        self.loop = asyncio.get_running_loop()
        self.now = time.monotonic
        # The sweeper's clock: read on the hot path instead of a clock call, it is
        # late by one sweep at most, as are the timeouts it serves.
        self.clock = time.monotonic()
        self.conns: set[Swept] = set()
        self.in_flight = 0
        self.failures = 0  # requests and connections the proxy refused or could not carry
        self.draining = False
        self._ids = itertools.count(1)
        self._sweeper: asyncio.Task[None] | None = None

    def count_failure(self, direction: Any, reason: str) -> None:
        """A connection the proxy refused, closed or could not carry, with no HTTP
        answer to count it by (``meshtui_connection_failures_total``)."""
        self.failures += 1
        self.telemetry.count_connection_failure(direction, reason)

    def next_conn_id(self) -> int:
        return next(self._ids)

    def start_sweeper(self) -> None:
        t = self.timeouts
        shortest = min(t.detect, t.header_read, t.response, t.idle, t.connect, t.body)
        self._sweeper = self.loop.create_task(self._sweep(max(0.01, min(0.25, shortest / 4))))

    async def _sweep(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self._tick(self.now())

    def _tick(self, now: float) -> None:
        # A function of its own, not inline in _sweep: the loop's variable would
        # otherwise keep the last connection swept alive until the next sweep.
        self.clock = now
        for conn in list(self.conns):
            try:
                conn.tick(now)
            except Exception:  # one odd connection must not stop the sweeping
                conn.transport.abort()
        self.pool.sweep(now)

    def drain(self) -> None:
        """Stops taking new requests; idle connections close now, busy ones after."""
        self.draining = True
        for conn in list(self.conns):
            conn.drain()

    def abort_all(self) -> None:
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.abort()
        self.pool.close()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
