"""SIGINT/SIGTERM for a sync: stop cleanly, never mid-write.

GitHub Actions cancels a job (and ends one at `timeout-minutes`) with SIGINT, then SIGTERM
~7.5 s later, then SIGKILL. While nothing is being written, a signal raises `Interrupted`
at once (like Ctrl-C's KeyboardInterrupt). Inside `deferred()` — the apply phase — it only
notes the signal: no new write starts, the writes already sent finish and are journaled,
and the engine records the run as `interrupted` with what really got written, then exits
128 + the signal number (130 for SIGINT, 143 for SIGTERM).

The handlers only set a flag: a Python signal handler runs in the main thread between
bytecodes, so the event loop sees the flag at its next check without any loop plumbing.

Inside `notifying()` (the e-mails and the chat message after the record is written) a
*second* signal is not deferred: it raises `Abandoned` at once (also out of a blocking SMTP
read), so a person pressing Ctrl-C twice, or the runner's SIGTERM after its SIGINT, is not
kept waiting on a slow mail server; the notifier records what was sent and what was not.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while nothing was being written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Abandoned(Interrupted):
    """A second stop signal during the notifications: what is left of them is dropped."""


class StopSignals:
    """Context manager owning SIGINT/SIGTERM for one command (main thread only; elsewhere,
    e.g. a test calling the engine from a thread, it leaves the handlers alone)."""

    def __init__(self) -> None:
        self.signum: int | None = None  # the first stop signal received, if any
        self.received = 0  # how many stop signals arrived
        self.abandoned = False  # a second one abandoned the notifications
        self._notifying = False
        self._defer = 0
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.signum is None:
            self.signum = signum
        if self._notifying and self.received >= 2 and not self.abandoned:
            self.abandoned = True
            raise Abandoned(signum)
        if not self._defer:
            raise Interrupted(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @contextlib.contextmanager
    def notifying(self) -> Iterator[None]:
        """The notifications: a second stop signal inside raises `Abandoned`."""
        self._notifying = True
        try:
            yield
        finally:
            self._notifying = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals inside this block are noted, not raised; `requested` tells the writer."""
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
