"""An apply that failed before its first write (the API down, a stale or unsafe plan, a
stop signal, the time limit, or every write found stale): whether it is recorded, and how.

On a schedule or in CI, where nobody watches the terminal, it is recorded in runs/ as a
`failed` (or `interrupted`) run and e-mailed, or a failed scheduled run would go unnoticed;
a person at a terminal sees the error, and runs/ (committed, the audit of syncs) does not
fill with attempts that changed nothing (docs/guide.md, "What a failed attempt records").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.core.plan import Plan
from reconciler.core.results import ApplyResult
from reconciler.engine.interface import Refused
from reconciler.engine.interrupt import Interrupted
from reconciler.net.deadline import TIME_LIMIT, TimeLimit
from reconciler.net.stats import Traffic
from reconciler.records import runlog


def records_refusals(trigger: str, environ: Mapping[str, str]) -> bool:
    """Whether an apply that failed before its first write goes into runs/ (and is
    e-mailed): scheduled, or in CI (GitHub Actions, or CI=true)."""
    in_ci = environ.get("GITHUB_ACTIONS", "").lower() == "true" or environ.get(
        "CI", ""
    ).lower() in {"true", "1"}
    return trigger == "scheduled" or in_ci


def stale_refusal(result: ApplyResult, stopped_by: str | None) -> Refused | None:
    """An apply that sent no write because what it was to change was stale (13.7: found
    by the read before the first write) failed before its first write, like a stale plan
    file refused as a whole (issue 28): the refusal (exit 1) with the stale customers'
    lines; None when anything else happened (a write sent, a stop, nothing to write)."""
    writing = [c for c in result.customers if c.plan.changes and not c.plan.errors]
    sent = any(c.results for c in result.customers)
    if not writing or not all(c.stale for c in writing) or sent or stopped_by:
        return None
    return Refused("\n".join(f"{c.plan.customer_id}: {e}" for c in writing for e in c.errors))


def start_failed_run(
    config: Config, plan: Plan | None, window: Period, trigger: str, traffic: Traffic
) -> runlog.RunHandle:
    """The record of a sync that did not happen, started (ended by `end_failed_run`)."""
    handle = runlog.start_run_or_refuse(
        config.config_dir,
        plan,
        trigger=trigger,
        started=dt.datetime.now(dt.UTC),
        period=window,
        currency=config.settings.currency,
    )
    handle.record.requests = traffic.to_json()  # what it took to fail (retries, 429s)
    return handle


def end_failed_run(handle: runlog.RunHandle, exc: BaseException) -> None:
    """Failed, or interrupted by a signal or the time limit, saying why."""
    if isinstance(exc, Interrupted):
        message = f"interrupted by {exc}: stopped before any write; nothing was written"
        handle.fail(message, interrupted_by=str(exc))
    elif isinstance(exc, TimeLimit):
        handle.fail(str(exc), interrupted_by=TIME_LIMIT)
    else:
        handle.fail(str(exc))
