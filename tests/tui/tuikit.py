"""Helpers the TUI's pilot and snapshot tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(cond: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> None:
    """Waits for what a check depends on rather than for a fixed time (on a loaded
    machine a stream can take longer than usual to be drawn); fails on timeout.
    The app under test runs on this same loop, so it goes on while this waits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(step)
