"""What applying a plan did: each write's outcome (`ChangeResult`), each customer's
(`CustomerResult`: errors, verified, skipped as stale), and the whole apply's
(`ApplyResult`). The run record (`reconciler.records`) is made from these.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconciler.core.plan import Change, CustomerPlan, Plan


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    ok: bool
    error: str | None = None
    addition_id: int | None = None  # the addition written (new id for an add)
    note: str | None = None  # e.g. "found already committed after a lost response"
    # Sent, but whether it was committed could not be settled even by re-reading (ok is
    # then False: never counted as written).
    unknown: bool = False


@dataclass(frozen=True)
class CustomerResult:
    plan: CustomerPlan
    results: tuple[ChangeResult, ...] = ()
    errors: tuple[str, ...] = ()  # planning errors + apply/verify failures
    verified: bool = False  # found as planned: by the writes' answers, or a re-read after them
    stale: bool = False  # skipped before its first write: its agreement moved (13.7)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.ok for r in self.results)


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    customers: tuple[CustomerResult, ...]
    started: dt.datetime
    finished: dt.datetime
    writes: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.customers)
