"""Exceptions the CLI turns into one clear line each (never a traceback)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.core.vocabulary import Location


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, pinned to where it is."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ReconcileError(Exception):
    """Base of every error the CLI reports as `error: <message>` with `exit_code`."""

    exit_code = 1


class ConfigError(ReconcileError):
    """Invalid input files; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RunLogFailed(ReconcileError):
    """The run log (journal, record, INDEX.md) could not be written mid-sync (DESIGN 13.5):
    no further ConnectWise write was started. `committed` holds one line per write that was
    committed (or whose outcome is unknown), printed to stderr before the one-line error,
    because the record that should hold them may not."""

    def __init__(self, message: str, committed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.committed = tuple(committed)


def os_error_line(exc: OSError, what: str = "") -> str:
    """One line naming the path and the cause ("runs/INDEX.md: No space left on device")."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    where = " -> ".join(names) or "(no path)"
    return f"{where}: {what + ': ' if what else ''}{cause}"
