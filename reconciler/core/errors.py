"""Exceptions the CLI turns into one clear line each (never a traceback)."""

from __future__ import annotations

from collections.abc import Iterable
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
