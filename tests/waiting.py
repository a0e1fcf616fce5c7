"""Waiting for a condition instead of sleeping a guessed time.

A test that sleeps 0.3 s and hopes the other side got there fails on a loaded machine and
wastes the time on an idle one; these poll often and give up only after a generous
deadline, failing with what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE = 30.0  # seconds: far beyond any healthy wait, only a hang reaches it
STEP = 0.005


def until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Return as soon as `condition()` is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(STEP)


async def until_async(
    condition: Callable[[], object], what: str, timeout: float = DEADLINE
) -> None:
    """`until` for a coroutine: the event loop keeps running other tasks meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(STEP)
