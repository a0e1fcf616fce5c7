"""Time limits (DESIGN 13.5): the whole run's (`--max-duration`) and the side channels'.

`RunDeadline` is the one clock a run is bounded by. The engine starts it when a command
starts and hands it to the API clients (`Clients.deadline`, `HttpApi.run_deadline`), so
anything that waits (a read, a retry's pause, a 429's Retry-After) can ask how long is left:

    deadline = RunDeadline(3000)      # or RunDeadline.unbounded()
    deadline.remaining()              # seconds left (math.inf when unbounded), never < 0
    deadline.expired                  # no new write may start
    deadline.cap(wait)                # a wait shortened to what is left

When it expires, no new ConnectWise write starts; a read still under way is cancelled
(`TimeLimit`, exit 124); the run is recorded `interrupted` ("time limit").

`within(seconds, fn, abort)` bounds a blocking call (SMTP, a chat webhook, the GitHub
API) by a *total* deadline: a server that trickles one byte every few seconds never trips a
per-read timeout, so the call runs in a worker thread; after `seconds` the caller gets
`TimeoutError` at once and `abort` is called to tear the connection down.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from reconciler.core.errors import ReconcileError

DEFAULT_MAX_DURATION = 50 * 60.0  # below GitHub Actions' usual job timeouts, with room left
MAX_DURATION_VAR = "RECONCILE_MAX_DURATION"
EXIT_TIME_LIMIT = 124  # as timeout(1): "the time limit ended it"
TIME_LIMIT = "time limit"  # the run record's `interrupted_by`
T = TypeVar("T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


class TimeLimit(ReconcileError):
    """The run's --max-duration passed while it was still reading: nothing more was done."""

    exit_code = EXIT_TIME_LIMIT


class RunDeadline:
    """A monotonic deadline; `seconds` None means unbounded."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._ends = math.inf if seconds is None else clock() + seconds

    @classmethod
    def unbounded(cls) -> RunDeadline:
        return cls(None)

    def remaining(self) -> float:
        return max(0.0, self._ends - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self._ends

    def cap(self, wait: float) -> float:
        return min(wait, self.remaining())

    def timeout(self) -> float | None:
        """For `asyncio.timeout`: None when unbounded."""
        return None if self.seconds is None else self.remaining()

    def describe(self) -> str:
        return "no time limit" if self.seconds is None else f"--max-duration {self.seconds:g} s"


def parse_duration(text: str, what: str = "--max-duration") -> float:
    """`3000`, `3000s`, `50m`, `1.5h` -> seconds (> 0)."""
    match = _DURATION.match(text)
    if not match or float(match[1]) <= 0:
        raise ReconcileError(
            f"{what}: {text!r} is not a duration, expected seconds (3000), or minutes/hours "
            "with a unit (50m, 1h)"
        )
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def max_duration(option: str | None, environ: Mapping[str, str] | None = None) -> float:
    """--max-duration, else RECONCILE_MAX_DURATION, else 50 minutes."""
    env = os.environ if environ is None else environ
    if option is not None:
        return parse_duration(option)
    if env.get(MAX_DURATION_VAR, "").strip():
        return parse_duration(env[MAX_DURATION_VAR], MAX_DURATION_VAR)
    return DEFAULT_MAX_DURATION


def within(seconds: float, fn: Callable[[], T], abort: Callable[[], None] = lambda: None) -> T:
    """`fn()` in a worker thread, or TimeoutError after `seconds` (then `abort()`, which
    should close `fn`'s connection so the worker ends too). The wait is in the calling
    thread, so a stop signal still reaches it at once."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller, never lost in the thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="deadline", daemon=True)
    worker.start()
    try:
        worker.join(max(0.0, seconds))
    except BaseException:  # a stop signal while waiting: the call is abandoned, not left
        with contextlib.suppress(Exception):
            abort()
        raise
    if worker.is_alive():
        with contextlib.suppress(Exception):  # tearing down a stuck connection: best effort
            abort()
        raise TimeoutError(f"no complete answer within {seconds:g} s (the total deadline)")
    error = box.get("error")
    if isinstance(error, BaseException):
        raise error
    return box["value"]  # type: ignore[return-value]
