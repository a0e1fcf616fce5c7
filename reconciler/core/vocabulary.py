"""The small nouns every layer shares: where an input came from, which period, and the
marker that identifies the plan comment on a pull request.

Kept apart from model (dozens of dataclasses) so that the CLI, which only needs these to
declare its options and report errors, starts fast (benchmarks/import_time.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Starts the plan Markdown (render writes it) and finds the PR comment to update in place
# (github reads it): one contract, owned by neither side.
PLAN_MARKER = "<!-- reconcile:plan -->"


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
