"""What an apply did, for people: one line per write (ok, FAILED or UNKNOWN), the e-mails
sent, where the run was recorded, the totals; after an interruption, what was committed
and the command that finishes the job."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import NamedTuple

import typer

from reconciler.cli.application import command_for
from reconciler.core.model import PeriodKind
from reconciler.core.plan import Plan
from reconciler.engine.interface import SyncOutcome
from reconciler.plan import render
from reconciler.secure.untrusted import plain

__all__ = ["interrupted_line", "report_outcome"]


def report_outcome(outcome: SyncOutcome, config_dir: Path, *, err: bool = False) -> None:
    """What apply did, for people (err: on stderr, under `--format json`)."""
    out = _Lines(err)
    try:
        _gather_lines(outcome, out, err)
    finally:  # a Ctrl-C mid-report: the writes gathered so far are still shown
        out.flush()
    for mail in outcome.emails:
        typer.echo(f"e-mail {mail.kind}: {plain(mail.detail)}", err=True)
    typer.echo(f"Run recorded: {outcome.record_path}", err=err)
    totals = outcome.record.totals
    failed = sum(1 for c in outcome.result.customers if not c.ok)
    if outcome.interrupted_by:
        typer.echo(interrupted_line(outcome, config_dir), err=True)
        return
    typer.echo(
        f"Apply complete: {totals.writes} write{'s' if totals.writes != 1 else ''}, "
        f"{len(outcome.result.customers) - failed} customers ok, {failed} with errors.",
        err=err,
    )
    details = command_for(config_dir, "activity", outcome.record.run_id)
    typer.echo(f"next: `{details}` shows this run; runs/INDEX.md lists them all", err=True)


def _gather_lines(outcome: SyncOutcome, out: _Lines, err: bool) -> None:
    """A line per write (ok, FAILED or UNKNOWN), and each customer's errors on stderr."""
    for cr in outcome.result.customers:
        for r in cr.results:
            note = f" ({plain(r.note)})" if r.note else ""
            mark = "ok" if r.ok else f"{'UNKNOWN' if r.unknown else 'FAILED'}: {plain(r.error)}"
            c = r.change
            price = f", price {render.price_words(c)}" if c.repriced else ""
            out.add(
                f"  {plain(cr.plan.customer_id)}: {c.action.value} "
                f"{plain(c.product)} {c.before} → {c.after}{price}: {mark}{note}",
                err=err,
            )
        for e in cr.errors:
            out.add(f"error: {plain(cr.plan.customer_id)}: {plain(e)}", err=True)


class _Lines:
    """Lines for stdout and stderr, written a run of one stream's lines at a time: one
    echo (and flush) per line was 0.3 s for the 16,840 writes of a 10,000-customer apply.
    The order across the two streams is kept."""

    def __init__(self, err: bool) -> None:
        self._err = err
        self._run: list[str] = []

    def add(self, line: str, *, err: bool) -> None:
        if err != self._err:
            self.flush()
            self._err = err
        self._run.append(line)

    def flush(self) -> None:
        if self._run:
            typer.echo("\n".join(self._run), err=self._err)
            self._run = []


class _NotStarted(NamedTuple):
    """What an interrupted apply never started: what a re-run would do."""

    changes: int
    customers: int


def _not_started(outcome: SyncOutcome) -> _NotStarted:
    changes = customers = 0
    for cr in outcome.result.customers:
        if cr.plan.errors:
            continue  # never applied, interrupted or not
        left = len(cr.plan.changes) - len(cr.results)
        if left > 0:
            changes, customers = changes + left, customers + 1
    return _NotStarted(changes, customers)


def interrupted_line(outcome: SyncOutcome, config_dir: Path) -> str:
    """What an interrupted apply committed and what it left, with the command to finish."""
    writes = outcome.record.totals.writes
    done = f"{writes} write{'s' if writes != 1 else ''} committed before it (recorded)"
    changes, customers = _not_started(outcome)
    if not changes:
        return (
            f"Interrupted by {outcome.interrupted_by}: {done}; every planned write had already "
            "been sent, nothing remains to apply."
        )
    again = command_for(config_dir, "apply", *_same_selection(outcome.result.plan))
    return (
        f"Interrupted by {outcome.interrupted_by}: {done}; {changes} change"
        f"{'s' if changes != 1 else ''} for {customers} customer"
        f"{'s' if customers != 1 else ''} not started. To finish, run `{again}` again "
        "(it plans afresh from what is now in ConnectWise)."
    )


def _same_selection(plan: Plan) -> list[str]:
    """The options that re-plan what this apply planned: a bare `apply` after an
    interrupted `apply --customer X` would apply every customer, and one on another day
    another period."""
    words = [w for c in plan.selection or () for w in ("--customer", shlex.quote(c))]
    if plan.period.kind is not PeriodKind.LAST_BILLING_PERIOD:
        words += ["--period", plan.period.kind.value]
    return [*words, "--as-of", plan.period.as_of.isoformat()]
