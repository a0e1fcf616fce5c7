"""Each engine command's meter: fresh request statistics (`Traffic`: what -v shows and the
run record keeps are that command's requests alone) and its clock (--max-duration), which
its clients consult and which bounds its reads of ConnectWise and ZeroTek (`in_time`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar

from reconciler.engine.clients import Clients
from reconciler.net.deadline import MAX_DURATION_VAR, RunDeadline, TimeLimit
from reconciler.net.stats import Traffic

T = TypeVar("T")


class Meter(NamedTuple):
    deadline: RunDeadline
    traffic: Traffic
    clients: Clients  # the command's clients, counting into `traffic`, on `deadline`


def meter(clients: Clients, notice: Callable[[str], None], max_duration: float | None) -> Meter:
    """A fresh meter for the command about to run."""
    deadline = RunDeadline(max_duration)
    # The throttles' waiting for a rate limit is bounded by it too (DESIGN 13.9).
    ends = None if max_duration is None else time.monotonic() + deadline.remaining()
    traffic = Traffic(notice=notice, deadline=ends)
    return Meter(deadline, traffic, replace(clients, traffic=traffic, deadline=deadline))


async def in_time(deadline: RunDeadline, coro: Coroutine[Any, Any, T]) -> T:
    """A read bounded by what is left of --max-duration: at the limit every request
    of it is cancelled (nothing is left running) and TimeLimit (exit 124) raised."""
    try:
        async with asyncio.timeout(deadline.timeout()):
            return await coro
    except TimeoutError:
        if not deadline.expired:
            raise
        raise TimeLimit(
            f"time limit: {deadline.describe()} passed while reading ConnectWise and "
            "ZeroTek; nothing was written. Re-run, or allow more time "
            f"({MAX_DURATION_VAR})"
        ) from None
    except TimeLimit as exc:
        # A throttle that cannot wait for the API's rate limit within the run's time
        # limit (13.9): the same limit, said the same way, with its cause.
        raise TimeLimit(
            f"time limit ({deadline.describe()}): {exc}; nothing was written. "
            f"Re-run later, or allow more time ({MAX_DURATION_VAR})"
        ) from None
