"""The two small nouns every layer shares: where an input came from and which period.

Kept apart from model (dozens of dataclasses) so that the CLI, which only needs these to
declare its options and report errors, starts fast (benchmarks/import_time.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, order=True)
class Location:
    """Where a value came from, for `file:line:col` messages (1-based line and column)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class PeriodKind(StrEnum):
    LAST_BILLING_PERIOD = "last-billing-period"
    CURRENT = "current"
