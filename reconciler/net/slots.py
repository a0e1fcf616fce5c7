"""Request slots served by priority: a semaphore whose waiters go in priority order, then in
arrival order.

Reading ConnectWise is a chain (companies, then their agreements, then each agreement's
additions) with thousands of requests in the last step. With a plain FIFO semaphore the
agreement requests of the second step queue behind every addition already waiting, so the
chain stalls; served by priority, the requests that unlock more work go first and the slots
stay busy with additions in between. The priority of a request comes from the task that
sends it (`priority()`), so the layers between the reader and the HTTP client need not
pass it along.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Iterator
from contextvars import ContextVar

URGENT = 0  # unlocks further requests (a step of a chain)
NORMAL = 1
BACKGROUND = 2  # many independent requests nothing else waits for

_priority: ContextVar[int] = ContextVar("request_priority", default=NORMAL)


@contextlib.contextmanager
def priority(level: int) -> Iterator[None]:
    """Requests sent inside this block (by this task) wait for a slot at `level`."""
    token = _priority.set(level)
    try:
        yield
    finally:
        _priority.reset(token)


class Slots:
    """At most `size` holders; waiters served by (priority, arrival)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self) -> None:
        if self._free and not self._waiting:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (_priority.get(), next(self._order), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as it was cancelled: pass the slot on
            # else: left in the heap, done; release() skips it
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, waiter = heapq.heappop(self._waiting)
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to it
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()
