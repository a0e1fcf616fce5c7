"""All or none: concurrent awaitables whose first failure cancels the rest and waits for
them to end (asyncio.TaskGroup's guarantee), raised as itself rather than wrapped in an
ExceptionGroup, so callers keep catching ReconcileError.

`asyncio.gather` leaves the other awaitables running when one fails: a read that has
already failed would go on sending requests behind the error (DESIGN 13.5: after a failed
read, no request of that run is still running).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


async def all_or_none(aws: Sequence[Awaitable[T]]) -> list[T]:
    """The results of `aws`, in order; on the first failure (or cancellation) every other
    one is cancelled and awaited before the exception propagates."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException as exc:
        await cancel_and_wait(tasks, exc)
        raise


async def all_or_none2(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """`all_or_none` of two awaitables of different types, typed."""
    tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        await asyncio.gather(*tasks)
    except BaseException as exc:
        await cancel_and_wait(tasks, exc)
        raise
    return tasks[0].result(), tasks[1].result()


async def cancel_and_wait(
    tasks: Sequence[asyncio.Future[Any]], cause: BaseException | None = None
) -> None:
    """Cancel `tasks` and return once each has ended (their errors are not wanted).

    A stop signal (KeyboardInterrupt, raised inside whichever coroutine was running) is
    not waited on here: it must reach `asyncio.run` at once, whose shutdown cancels every
    task and waits for them itself; waiting here would let the loop run on and re-raise it
    in the middle of that shutdown."""
    for task in tasks:
        task.cancel()
    if not isinstance(cause, KeyboardInterrupt | SystemExit):
        await asyncio.gather(*tasks, return_exceptions=True)
