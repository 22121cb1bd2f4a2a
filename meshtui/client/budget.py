"""How much of a core taking tap events in may use before batches are shed."""

from __future__ import annotations

import gc
import threading
import time

# CPU seconds the garbage collector has taken, per thread; and when the
# running collection started, per thread.
_GC_SPENT: dict[int, float] = {}
_GC_START: dict[int, float] = {}


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    me = threading.get_ident()
    if phase == "start":
        _GC_START[me] = time.thread_time()
    elif me in _GC_START:
        _GC_SPENT[me] = _GC_SPENT.get(me, 0.0) + time.thread_time() - _GC_START.pop(me)


def _watch_gc() -> None:
    if _gc_timer not in gc.callbacks:
        gc.callbacks.append(_gc_timer)


class Budget:
    """How much of a core taking in wire events may take.

    A safety valve above what the machine can do: past this share the client
    sheds whole batches (counted, and shown as such) instead of starving the
    UI's own loop of the time it needs to answer keys and draw. What is spent
    is CPU time of the loop's thread (measure it with :meth:`clock`), so that
    other processes busy on a shared machine do not count as the client's own.
    """

    @staticmethod
    def clock() -> float:
        """The loop thread's CPU seconds, less what the garbage collector took.

        A collection runs inside whatever allocation set it off, often the
        conversion being measured; shedding the next batches would not give
        that time back, only lose events to a pause already over.
        """
        _watch_gc()
        return time.thread_time() - _GC_SPENT.get(threading.get_ident(), 0.0)

    def __init__(self, share: float, period_s: float = 0.5) -> None:
        self.share = share
        self.period_s = period_s
        self._start = time.perf_counter()
        self._spent = 0.0

    def allows(self) -> bool:
        now = time.perf_counter()
        if now - self._start >= self.period_s:
            self._start, self._spent = now, 0.0
        return self._spent < self.share * self.period_s

    def spend(self, seconds: float) -> None:
        self._spent += seconds
