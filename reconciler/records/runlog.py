"""Writing a run (the run log writer): one JSON record (plus a Markdown twin) per apply
attempt under runs/, `RunHandle`.

A run is written with outcome "incomplete" before anything touches ConnectWise, and each
write's outcome is journaled into it (`journal`: atomically, durably) as soon as it is
known, so a process killed mid-apply leaves a record of every write it had settled. When
the attempt ends the record is finished (success, partial, failed, interrupted) and
INDEX.md rebuilt from the run files (`runs`), under the config directory's lock (engine),
so it can never disagree with them. Run ids are claimed with an exclusive create: never
exists-then-replace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.billed import Billed
from reconciler.core.errors import ReconcileError, RunLogFailed, os_error_line
from reconciler.core.files import atomic_write, read_json
from reconciler.core.money import plain
from reconciler.core.periods import Period
from reconciler.core.plan import Plan
from reconciler.core.results import ApplyResult, ChangeResult, CustomerResult
from reconciler.records import activity, runindex
from reconciler.records.journal import Journal, journal_path
from reconciler.records.record import EmailOutcome, RunRecord
from reconciler.records.runfiles import TRIGGERS, run_path, runs_dir
from reconciler.records.runview import render_run
from reconciler.records.stream import RecordStream
from reconciler.secure.scrub import scrub
from reconciler.secure.untrusted import plain as plain_text


def _claim_run_id(config_dir: Path, started: dt.datetime, trigger: str) -> tuple[str, Path]:
    """A run id nobody else holds: its JSON file is created exclusively (O_EXCL), so two
    runs started in the same second, even in two processes, never share one."""
    base = f"{started.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{trigger}"
    n = 1
    while True:
        run_id = base if n == 1 else f"{base}-{n}"
        path = run_path(config_dir, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            n += 1
            continue
        return run_id, path


# Below this size the record is rewritten on every journaled write, so the file alone is
# always current. Above it the journal alone carries the outcomes until the run ends:
# rewriting megabytes per write (or even every few seconds) cost seconds per apply at
# 10,000 customers, and readers replay the journal anyway (`activity.load_run`).
FOLD_ALWAYS_BYTES = 256 * 1024


@dataclass
class RunHandle:
    """A run being recorded. The apply journals into it (`change`, `customer`); the engine
    ends it with `finish` or `fail`, then `set_emails`.

    Journal: each outcome is appended, as one JSON line, to `<run>.journal` beside the
    record before the call returns (so it survives the process being killed at any point),
    and a small record is rewritten with it (see FOLD_ALWAYS_BYTES). Readers replay the
    journal onto an incomplete record (`load_run`), so a record of any size says exactly
    what was written; finishing writes the whole record and removes the journal."""

    config_dir: Path
    record: RunRecord
    path: Path
    _where: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)
    _record_bytes: int = field(default=0, repr=False)
    # The first write of the run log that failed: from then on nothing is written to it
    # and no ConnectWise write starts (DESIGN 13.5).
    broken: OSError | None = field(default=None, repr=False)
    _journal_file: Journal = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._journal_file = Journal(journal_path(self.path))

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def md_path(self) -> Path:
        return self.path.with_suffix(".md")

    @property
    def journal_path(self) -> Path:
        return journal_path(self.path)

    # --- the journal (called by apply as outcomes become known) -------------------------

    def change(self, result: ChangeResult) -> None:
        """One write's outcome, journaled before this returns."""
        where = self._where.get(id(result.change))
        if where is None:
            return
        change = self.record.customers[where[0]].changes[where[1]]
        change.settle(result)
        error, note = (None if t is None else scrub(t) for t in (change.error, change.note))
        self._journal({"c": where[0], "k": where[1], "ok": change.ok, "error": error, "note": note})

    def customer(self, result: CustomerResult, *, durable: bool = True) -> None:
        """A customer's end: its errors (stale, verification, an exception) and verdict.
        `durable=False` only updates the record (the engine's final pass over customers
        that wrote nothing; `finish` then writes once)."""
        cust = self.record.settle_customer(result)
        if durable and cust is not None:
            errors = [scrub(e) for e in cust.errors]
            self._journal({"id": cust.id, "errors": errors, "verified": cust.verified})

    def _journal(self, entry: dict[str, Any]) -> None:
        """Never raises: a run log that refuses a write (ENOSPC, EIO, a short write, a
        read-only disk) marks the handle `broken`, which stops every new ConnectWise write
        (the engine's stop condition); the outcomes stay in memory for the engine to print.
        """
        if self.broken is not None:
            return
        try:
            self._append(entry)
        except OSError as exc:
            self.broken = exc

    def _append(self, entry: dict[str, Any]) -> None:
        # A small record is rewritten with the line, and then holds every outcome so far
        # (and is fsynced): no need to fsync the journal too.
        fold = self._record_bytes <= FOLD_ALWAYS_BYTES
        self._journal_file.append(entry, group_commit=not fold)
        if fold:
            self.record.retotal()
            self._write(index=False, summary=False)

    def committed_lines(self) -> list[str]:
        """One line per write ConnectWise committed, or may have (outcome unknown), from
        the outcomes held in memory: what stderr shows when the run log cannot."""
        lines = []
        for c in self.record.customers:
            for ch in c.changes:
                if ch.ok is True or ch.ok == "unknown":
                    what = "committed" if ch.ok is True else "outcome unknown"
                    lines.append(
                        f"{what}: {plain_text(c.id)} {ch.action} {plain_text(ch.sku)} "
                        f"[{plain_text(ch.product)}] {ch.before} → {ch.after} on agreement "
                        f"{plain_text(c.agreement.text())}"
                    )
        return lines

    def failure(self, exc: OSError) -> RunLogFailed:
        """The one-line error for a run log that cannot be written, with every write
        committed so far (printed by the command before it)."""
        committed = self.committed_lines()
        return RunLogFailed(
            os_error_line(exc, "cannot write the run log")
            + f"; no ConnectWise write was started after it; {len(committed)} write(s) "
            "committed before it are listed above. Free the disk, then run `reconcile plan` "
            "to see ConnectWise as it is",
            committed,
        )

    # --- the end ---------------------------------------------------------------------------

    def finish(
        self,
        result: ApplyResult,
        *,
        interrupted_by: str | None = None,
        emails: Sequence[EmailOutcome] | None = None,
    ) -> Path:
        """Record how the apply ended: every customer's result (the journal already holds
        each write's), the outcome, and INDEX.md; and `emails`, the e-mails' outcomes when
        they are known already (none can be sent), so no `set_emails` write follows."""
        if emails is not None:
            self.record.emails = list(emails)
        for customer in result.customers:
            self.customer(customer, durable=False)
        error = None
        if self.broken is not None:
            error = (
                f"the run log could not be written ({os_error_line(self.broken)}): no "
                "ConnectWise write was started after it"
            )
        elif interrupted_by:
            error = (
                f"interrupted by {interrupted_by}: no new write was started after it; "
                "the writes already sent finished and are recorded here"
            )
        self.record.end(result.finished, error=error, interrupted_by=interrupted_by)
        # Everything (record, twin, summary, INDEX.md) says how it ended before the
        # e-mails go out: a process killed while they do leaves nothing that contradicts
        # the record. `set_emails` then writes it all once more, with their outcomes
        # (unless they were known before: `emails`).
        return self._close()

    def _close(self) -> Path:
        """Write the ended record, drop the journal it now holds, rebuild INDEX.md. Raises
        RunLogFailed (the journal kept: it may hold what the record could not) when the
        disk refuses any of it, or refused a journal write earlier."""
        try:
            self._write(index=False)
            self._journal_file.close(remove=self.broken is None)
            activity.rebuild_index(self.config_dir)
        except OSError as exc:
            self.broken = self.broken or exc
            self._journal_file.close(remove=False)
        if self.broken is not None:
            raise self.failure(self.broken)
        return self.path

    def fail(self, message: str, *, interrupted_by: str | None = None) -> Path:
        """The attempt failed as a whole (stale plan refused, API failure, an internal
        error, a signal before the first write): every write the journal settled stays
        recorded as it was."""
        outcome = "interrupted" if interrupted_by else "failed"
        now = dt.datetime.now(dt.UTC)
        self.record.end(now, outcome=outcome, error=message, interrupted_by=interrupted_by)
        return self._close()

    def discard(self) -> None:
        """Take back the record of an attempt that sent no write (issue 28: a person at a
        terminal sees the error; runs/, the audit of syncs, keeps only syncs that ran):
        the record, its twin, journal and summary go, and INDEX.md is rebuilt without it.
        Only for an attempt whose journal holds no write, sent or settled."""
        self._journal_file.close()
        summary = runindex.summary_path(runs_dir(self.config_dir), self.run_id)
        for path in (self.path, self.md_path, summary):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its month folder, when this run made it
            self.path.parent.rmdir()
        activity.rebuild_index(self.config_dir)

    def set_emails(self, emails: Sequence[EmailOutcome]) -> Path:
        self.record.emails = list(emails)
        if self.broken is not None:
            raise self.failure(self.broken)
        try:
            return self._write()
        except OSError as exc:
            self.broken = exc
            raise self.failure(exc) from None

    def _write(self, *, twin: bool = True, index: bool = True, summary: bool = True) -> Path:
        """The record (compact JSON, streamed customer by customer: people read the
        Markdown twin), its `twin`, its `summary` (runs/index/) and INDEX.md. The tests
        hold every record to run.schema.json; checking it here, on each write, cost
        seconds per apply at 10,000 customers."""
        stream = RecordStream(self.record)
        atomic_write(self.path, stream)
        shown = self.record
        if stream.scrubbed:  # a credential in the data: show what the file holds
            shown = RunRecord.from_json(read_json(self.path))
        if twin:
            atomic_write(self.md_path, render_run(shown))
        if summary:
            summary_of = runindex.summary_of(shown, self.path)
            runindex.write(runs_dir(self.config_dir), summary_of, stream.digest())
        self._record_bytes = stream.size
        if index:
            activity.rebuild_index(self.config_dir)
        return self.path


def start_run(
    config_dir: Path,
    plan: Plan | None,
    *,
    trigger: str,
    started: dt.datetime,
    period: Period | None = None,
    billed: Billed | None = None,
    currency: str | None = None,
) -> RunHandle:
    """Record an attempt as incomplete, before the first write. `plan` may be None for an
    attempt that failed before planning; then `period` names what it was for and `currency`
    the currency its figures are in (a plan carries its own)."""
    if trigger not in TRIGGERS:
        raise ReconcileError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    the_period = plan.period if plan is not None else period
    if the_period is None:
        raise ValueError("start_run needs a plan or a period")
    if started.tzinfo is None:  # the library passes aware datetimes; naive ones mean UTC
        started = started.replace(tzinfo=dt.UTC)
    run_id, path = _claim_run_id(config_dir, started, trigger)
    record = RunRecord.start(run_id, trigger, started, the_period, plan, currency)
    if billed is not None:
        record.billed_before = {
            "seats": billed.seats,
            "monthly_revenue": plain(billed.revenue),
            "currency": record.currency,
        }
    handle = RunHandle(Path(config_dir), record, path)
    if plan is not None:
        for i, cp in enumerate(plan.customers):
            for j, change in enumerate(cp.changes):
                handle._where[id(change)] = (i, j)
    handle._write()
    return handle


def start_run_or_refuse(config_dir: Path, plan: Plan | None, **kw: Any) -> RunHandle:
    """`start_run`, with a disk that refuses the record (read-only, full, EIO) as one line
    naming the path: nothing has been written to ConnectWise yet, and nothing will be."""
    try:
        return start_run(config_dir, plan, **kw)
    except OSError as exc:
        raise ReconcileError(
            os_error_line(exc, "cannot write the run record")
            + "; nothing was written to ConnectWise"
        ) from None
