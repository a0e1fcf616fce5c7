"""The sync engine: one object owns a sync from lock to e-mail (octoDNS's `Manager`, here).

Commands parse options, show and prompt; the engine does the work. Its clients are
injected (`Clients`: the demo and the tests pass the sandbox's environment), and what a
command shows is injected too (`Ui`), so the engine never prints. What commands hand it and
get back is in `interface`.

    engine = SyncEngine(config, Clients(), ui=Ui(...))
    engine.plan(PlanRequest(...))      read-only: ConnectWise + ZeroTek -> Planned (no lock)
    engine.apply(ApplyRequest(...))    -> SyncOutcome (see below)
    engine.check_unmapped(as_of, ...)  -> Unmapped (rows + the e-mail's outcome)

`apply`, in order, one method each:
 1. `_guard`: options, customers and `enabled` checked before any request (`checks`);
 2. lock the config directory (`lock.config_lock`, `--lock-timeout`);
 3. `_read`: plan, or load a saved plan and verify it (`planning.verify_saved_plan` — the
    one place a saved plan is checked against the current config and ConnectWise);
 4. safety (`check_safe`), then `ui.confirm` (outside the event loop: Ctrl-C at the prompt
    is an ordinary interrupt);
 5. `_execute`: the run record starts `incomplete`; `apply.apply_plan` writes customer by
    customer with one read per changed agreement just before its first write (staleness),
    journals every write, stops starting writes on SIGINT/SIGTERM, and verifies each write
    by its answer, re-reading only when an answer cannot tell (DESIGN 13.7);
 6. the run record is finished (`runlog`), INDEX.md rebuilt, under the lock;
 7. the e-mails are handed the finished record (`notices`), and their outcomes recorded.
A failure in 3–4 is recorded and e-mailed as a failed (or interrupted) run, then raised
(`failures`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from reconciler.config.env import API_CREDENTIAL_VARS
from reconciler.core import schedule
from reconciler.core.errors import ReconcileError, RunLogFailed
from reconciler.core.model import Config, PeriodKind
from reconciler.core.periods import Period, period_for
from reconciler.core.results import ApplyResult
from reconciler.engine import collector, due, failures, metering, planning, unmapped, writing
from reconciler.engine.checks import check_enabled, check_safe, note_forced, select_customers
from reconciler.engine.clients import Clients
from reconciler.engine.interface import (
    READING,
    ApplyRequest,
    Declined,
    Planned,
    PlanRequest,
    SyncOutcome,
    Ui,
)
from reconciler.engine.interrupt import Interrupted, StopSignals
from reconciler.engine.lock import config_lock
from reconciler.engine.notices import Notifier
from reconciler.net.deadline import EXIT_TIME_LIMIT, TIME_LIMIT, RunDeadline
from reconciler.notify.smtp import SmtpSettings, smtp_from_env
from reconciler.plan import orphans, planfile
from reconciler.records import runfiles, runlog
from reconciler.secure.scrub import check_credentials

T = TypeVar("T")


class _Guarded(NamedTuple):
    """What `apply` knows before any request or the lock."""

    saved: Planned | None  # the plan file's plan, to verify (None: plan afresh)
    window: Period
    trigger: str
    notifier: Notifier


class SyncEngine:
    """One sync at a time for one config directory (see the module docstring)."""

    def __init__(self, config: Config, clients: Clients | None = None, *, ui: Ui | None = None):
        self.config = config
        self.clients = clients or Clients()
        self.ui = ui or Ui()
        self.traffic = self.clients.traffic
        # The run record the last apply wrote (also when it then raised): None if none.
        self.recorded: Path | None = None
        # The last apply failed before any write and, being local, was not recorded.
        self.unrecorded = False
        self.deadline = RunDeadline.unbounded()  # the current command's --max-duration

    def _metered(self, max_duration: float | None = None) -> None:
        """A fresh meter (`metering`) for the command about to run."""
        self.deadline, self.traffic, self.clients = metering.meter(
            self.clients, self.ui.notice, max_duration
        )

    @staticmethod
    def _run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)

    def check_customers(self, ids: Sequence[str] | None) -> None:
        """An unknown `--customer` fails here, before any request."""
        select_customers(self.config, ids)

    def period(self, kind: PeriodKind, as_of: dt.date | None) -> Period:
        return period_for(kind, self.config.settings, as_of)

    # --- the daily schedule ------------------------------------------------------------

    def due(self, today: dt.date) -> schedule.Decision:
        """`plan --if-due` (`due.decide`); a sync day passed without a sync is posted."""
        return due.decide(self.config, today, self._notifier())

    # --- plan ------------------------------------------------------------------------------

    @collector.quiet()
    def plan(self, req: PlanRequest) -> Planned:
        """Read-only: never writes to ConnectWise, takes no lock."""
        select_customers(self.config, req.customers)  # unknown ids fail before any request
        self._metered(req.max_duration)
        check_credentials(API_CREDENTIAL_VARS, self.clients.environ)  # no header could carry it
        window = self.period(req.period, req.as_of)

        async def go() -> Planned:
            async with self.clients.connectwise(self.config) as cw:
                if req.baseline is None:
                    return await planning.make_plan(
                        self.config, window, req.customers, cw, self.clients
                    )
                planned, base = await planning.make_plans_with_baseline(
                    self.config, req.baseline, window, req.customers, cw, self.clients
                )
                return replace(planned, base=base)

        with self.ui.busy(READING):
            planned = self._run(metering.in_time(self.deadline, go()))
        if self.config.ledger is None:
            self.ui.notice(orphans.NO_LEDGER)
        if req.out is not None:
            planning.save_plan(req.out, planned)
        return planned

    # --- apply -----------------------------------------------------------------------------

    @collector.quiet()
    def apply(self, req: ApplyRequest) -> SyncOutcome:
        """Lock, plan or verify, check safety, confirm, then the journaled apply, record and
        e-mails. Raises (after recording a failed run) when the sync could not start."""
        self.recorded, self.unrecorded = None, False
        saved, window, trigger, notifier = self._guard(req)
        self._metered(req.max_duration)
        from_file = saved is not None
        with (
            StopSignals() as signals,
            config_lock(self.config.config_dir, req.command, req.lock_timeout),
        ):
            if req.if_due:  # under the lock: a run finishing now has written its record
                due.check_not_applied(self.config, window)
            planned: Planned | None = None
            try:
                planned = self._run(metering.in_time(self.deadline, self._read(req, saved, window)))
                # Verified (or never given): the re-derived plan is what is applied. The
                # file's copy, tens of megabytes at 10,000 customers, goes now.
                saved = None
                self.ui.show_plan(planned.plan)
                check_safe(planned.plan, force=req.force)
                forced = note_forced(planned.plan, req.force, self._environ())
                planned = replace(planned, plan=forced)
            except (ReconcileError, Interrupted) as exc:
                if isinstance(exc, Declined):
                    raise
                if not failures.records_refusals(trigger, self._environ()):
                    self.unrecorded = True
                    raise
                with signals.deferred():
                    self._record_failure(planned, window, exc, trigger, notifier, signals)
                raise
            if self.ui.confirm is not None and not from_file and not self.ui.confirm(planned.plan):
                raise Declined("apply cancelled: nothing was applied")
            return self._execute(planned, trigger, notifier, signals)

    def _guard(self, req: ApplyRequest) -> _Guarded:
        """Everything that can be refused without a request or the lock."""
        trigger = runfiles.detect_trigger(req.trigger, self.clients.environ)
        if req.plan_file is not None and (
            req.customers or req.as_of or req.period is not PeriodKind.LAST_BILLING_PERIOD
        ):
            raise ReconcileError(
                "a saved plan is applied exactly as planned: --customer, --period and --as-of "
                "go to `reconcile plan`, not to `reconcile apply PLANFILE`"
            )
        saved = None
        if req.plan_file is not None:
            plan, state, data = planfile.load_with_data(req.plan_file)
            # Its customers were checked as they were read; what is compared with the
            # re-derived plan is `data`, so the parsed copies need not stay in memory.
            saved = Planned(replace(plan, customers=()), state, data=data)
        else:
            select_customers(self.config, req.customers)
        check_enabled(self.config)  # deactivated means hands off, before any request
        smtp = smtp_from_env(self.clients.environ) if req.send_email else None
        window = saved.plan.period if saved else self.period(req.period, req.as_of)
        return _Guarded(saved, window, trigger, self._notifier(smtp, req.send_email))

    async def _read(self, req: ApplyRequest, saved: Planned | None, window: Period) -> Planned:
        # Before any request, and inside apply's failure recording: a refused credential is
        # a failed run, recorded and e-mailed (naming the variable, never the value).
        check_credentials(API_CREDENTIAL_VARS, self.clients.environ)
        async with self.clients.connectwise(self.config) as cw:
            with self.ui.busy(READING):
                if saved is not None:
                    # never the file's own changes: the re-derived plan, found identical
                    return await planning.verify_saved_plan(self.config, saved, cw, self.clients)
                return await planning.make_plan(
                    self.config, window, req.customers, cw, self.clients
                )

    def _execute(
        self,
        planned: Planned,
        trigger: str,
        notifier: Notifier,
        signals: StopSignals,
    ) -> SyncOutcome:
        """Steps 5-7: the journaled apply, the finished record, the e-mails. Signals only
        stop new writes from here on; the record and e-mails always get written."""
        plan = planned.plan
        with signals.deferred():
            handle = runlog.start_run_or_refuse(
                self.config.config_dir,
                plan,
                trigger=trigger,
                started=dt.datetime.now(dt.UTC),
                billed=planned.billed,
                currency=self.config.settings.currency,
            )
            self.recorded = handle.path
            self.ui.applying(sum(1 for cp in plan.customers if cp.changes))
            stop = writing.StopWhen(signals, handle, self.deadline)
            collector.settle()
            try:
                write = writing.write(planned, self.config, self.clients, self.ui, handle, stop)
                result = self._run(write)
            except BaseException as exc:
                # A bug, not a sync outcome: still record what the journal knows, and say so.
                handle.record.requests = self.traffic.to_json()
                handle.fail(f"apply stopped by an internal error: {type(exc).__name__}: {exc}")
                raise
            finally:
                self.ui.applying(-1)
            handle.record.requests = self.traffic.to_json()
            stopped_by = signals.name or (TIME_LIMIT if stop.limited else None)
            self._unrecord_if_only_stale(handle, result, trigger, stopped_by)
            unsent = notifier.unsendable(plan)
            try:
                handle.finish(result, interrupted_by=stopped_by, emails=unsent)
            except RunLogFailed:
                # The e-mails still tell the truth (the record in memory); the error, with
                # every committed write, is what the command shows.
                notifier.after_sync(handle, plan, signals, chat_event=False)
                raise
            run_id = handle.record.run_id
            owned = writing.rewrite_ledger(self.config, planned, result, run_id, self.ui.notice)
            emails = notifier.after_sync(handle, plan, signals, unsent=unsent)
        failed = not owned or any(not c.ok for c in result.customers)
        code = signals.exit_code or (EXIT_TIME_LIMIT if stop.limited else (1 if failed else 0))
        return SyncOutcome(result, handle.record, handle.path, emails, stopped_by, code)

    def _unrecord_if_only_stale(
        self,
        handle: runlog.RunHandle,
        result: ApplyResult,
        trigger: str,
        stopped_by: str | None,
    ) -> None:
        """An apply that sent no write because what it was to change was stale (13.7: found
        by the read before the first write) failed before its first write, like a stale
        plan file refused as a whole: at a terminal it is shown, not recorded, not e-mailed
        (issue 28, docs/guide.md "What a failed attempt records"); scheduled and in CI it
        is recorded as `failed`. Raises Refused (exit 1) with the stale customers' lines."""
        refusal = failures.stale_refusal(result, stopped_by)
        if refusal is None or handle.broken is not None:
            return
        if failures.records_refusals(trigger, self._environ()):
            return
        handle.discard()
        self.recorded, self.unrecorded = None, True
        raise refusal

    def _environ(self) -> Mapping[str, str]:
        return os.environ if self.clients.environ is None else self.clients.environ

    def _notifier(self, smtp: SmtpSettings | None = None, send: bool = False) -> Notifier:
        return Notifier(self.config.settings, self._environ(), self.ui.notice, send, smtp)

    def _record_failure(
        self,
        planned: Planned | None,
        window: Period,
        exc: BaseException,
        trigger: str,
        notifier: Notifier,
        signals: StopSignals,
    ) -> None:
        """A sync that did not happen (API down, stale or unsafe plan, a signal before the
        first write) is still a sync outcome: record it and e-mail it, or a failed scheduled
        run would go unnoticed."""
        plan = planned.plan if planned else None
        handle = failures.start_failed_run(self.config, plan, window, trigger, self.traffic)
        self.recorded = handle.path
        failures.end_failed_run(handle, exc)
        notifier.after_failure(handle, signals)

    # --- check-unmapped -------------------------------------------------------------------

    @collector.quiet()
    def check_unmapped(self, as_of: dt.date | None, *, send_email: bool) -> unmapped.Unmapped:
        """Current-period usage (one bulk ZeroTek fetch) -> customers using unmapped SKUs,
        and the daily e-mail while any remain."""
        check_credentials(API_CREDENTIAL_VARS, self.clients.environ)  # before any request
        smtp = smtp_from_env(self.clients.environ) if send_email else None
        period = self.period(PeriodKind.CURRENT, as_of)
        self._metered()
        found = self._run(unmapped.find_unmapped(self.config, self.clients, period))
        return unmapped.remind(self.config, found, send_email=send_email, smtp=smtp)
