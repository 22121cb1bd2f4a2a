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
