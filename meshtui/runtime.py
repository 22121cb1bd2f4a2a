"""Process-wide settings for meshtui's long-running processes."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Makes the garbage collector's full passes rare, as a long-lived process can afford.

    The controller's windows, the tap feed's ring and the proxy's tables hold
    hundreds of thousands of objects, while every scrape, batch or request makes
    thousands of short-lived ones. With Python's default thresholds the
    collector walks the long-lived ones again and again, in the middle of a
    scrape tick or a frame: measured, that doubled the controller's scrape tick
    p99 (106 → 59 ms, benchmarks/controller_scrape.py) and made the tap feed's
    arrival-to-screen p99 five times longer (398 → 81 ms, benchmarks/tap_tui.py).
    Objects that exist at start-up are frozen out of collection altogether.
    Nothing here leaks: reference counting still frees almost everything at once.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def tune_gc_for_ui() -> None:
    """As :func:`tune_gc`, with young collections four times as frequent, for the TUI.

    A young collection walks everything allocated since the last one that is
    still alive. At 100,000 allocations apart, with a 500-pod table refreshed
    every second, that walk took 80-180 ms once every 20 s or so, in the
    middle of a key's answer. At 25,000 apart, with the middle generation
    collected every tenth time, the longest pause in a minute was 49 ms and
    the collector's total time lower (0.31 s against 0.42 s); the tap feed at
    50,000 events/s kept its arrival-to-screen p99 (53 ms). At 10,000 apart
    pauses were shorter still but the tap feed's p99 rose to 81 ms.
    """
    tune_gc()
    gc.set_threshold(25_000, 10, 1000)
