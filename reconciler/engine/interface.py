"""What commands hand the engine and get back: the requests (`PlanRequest`,
`ApplyRequest`), what a command shows while the engine works (`Ui`), the results (`Planned`,
`SyncOutcome`) and the refusals (`Refused`, `Declined`, `AlreadyApplied`).

Plain data with no I/O: a command builds these from its options and renders what comes back
(`manager.SyncEngine` does the work).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.core.billed import Billed
from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, PeriodKind
from reconciler.core.plan import Plan
from reconciler.core.results import ApplyResult, CustomerResult
from reconciler.net.deadline import max_duration
from reconciler.records.record import EmailOutcome, RunRecord

EXIT_UNSAFE = 3
# --max-duration / RECONCILE_MAX_DURATION -> seconds, for the commands (net.deadline).
resolve_max_duration = max_duration
READING = "Reading ConnectWise and ZeroTek…"


class Refused(ReconcileError):
    """apply will not run; exit status 1, or 3 for an unsafe plan."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Declined(Refused):
    """Nobody said yes: not a failed sync, so nothing is recorded or e-mailed."""


class AlreadyApplied(Declined):
    """`apply --if-due`: the period already has a successful scheduled run (a queued
    scheduled sync that another run beat to it). Not a failure: exit 0, nothing recorded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=0)


# --- what commands hand the engine, and get back ------------------------------------------


def _quiet(message: str) -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Ui:
    """What a command shows while the engine works; every hook is optional."""

    busy: Callable[[str], contextlib.AbstractContextManager[object]] = _quiet
    show_plan: Callable[[Plan], None] = lambda plan: None
    # None: no confirmation (apply --yes, or a saved plan); else False declines.
    confirm: Callable[[Plan], bool] | None = None
    customer_done: Callable[[CustomerResult], None] = lambda result: None
    # Called with the number of customers to write before the first write, and with -1
    # when writing ends (progress bars start and stop here).
    applying: Callable[[int], None] = lambda total: None
    # One line for the user about a side channel (a chat message's outcome).
    notice: Callable[[str], None] = lambda line: None


@dataclass(frozen=True)
class PlanRequest:
    customers: Sequence[str] | None = None
    period: PeriodKind = PeriodKind.LAST_BILLING_PERIOD
    as_of: dt.date | None = None
    out: Path | None = None  # also save the plan (with its state snapshot) here
    baseline: Config | None = None  # also plan the base branch's mappings (12.7)
    max_duration: float | None = None  # seconds (--max-duration); None: unbounded


@dataclass(frozen=True)
class ApplyRequest:
    plan_file: Path | None = None  # apply exactly this saved plan
    customers: Sequence[str] | None = None
    period: PeriodKind = PeriodKind.LAST_BILLING_PERIOD
    as_of: dt.date | None = None
    force: bool = False
    send_email: bool = True
    trigger: str | None = None  # None: detected (GITHUB_EVENT_NAME=schedule -> scheduled)
    lock_timeout: float = 0.0
    command: str = "reconcile apply"  # how the lock names its holder
    if_due: bool = False  # refuse a period runs/ already records as applied by the schedule
    max_duration: float | None = None  # seconds (--max-duration); None: unbounded


@dataclass(frozen=True)
class Planned:
    plan: Plan
    state: dict[str, Any]  # the snapshot a saved plan carries for staleness checks
    base: Plan | None = None  # the baseline's plan, from the same read (plan --baseline)
    data: dict[str, Any] | None = None  # a saved plan file's JSON, as read (verified in full)
    # What ConnectWise bills for the managed products before the run (the INDEX chart).
    billed: Billed | None = None


@dataclass(frozen=True)
class SyncOutcome:
    """What one apply did. `record_path` is the run's JSON file under runs/."""

    result: ApplyResult
    record: RunRecord
    record_path: Path
    emails: tuple[EmailOutcome, ...]
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM" / "time limit"
    exit_code: int = 0

    @property
    def run_id(self) -> str:
        return self.record.run_id
