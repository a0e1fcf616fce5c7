"""The sync engine: one object owns a sync from lock to e-mail (octoDNS's `Manager`, here).

Commands parse options, show and prompt; the engine does the work. Its clients are
injected (`Clients`: the demo and the tests pass the sandbox's environment), and what a
command shows is injected too (`Ui`), so the engine never prints.

    engine = SyncEngine(config, Clients(), ui=Ui(...))
    engine.plan(PlanRequest(...))      read-only: ConnectWise + ZeroTek -> Planned (no lock)
    engine.apply(ApplyRequest(...))    -> SyncOutcome (see below)
    engine.check_unmapped(as_of, ...)  -> Unmapped (rows + the e-mail's outcome)

`apply`, in order, one method each:
 1. `_guard`: options, customers and `enabled` checked before any request;
 2. lock the config directory (`lock.config_lock`, `--lock-timeout`);
 3. `_read`: plan, or load a saved plan and verify it (`verify_saved_plan` — the one place
    a saved plan is checked against the current config and ConnectWise);
 4. safety (`check_safe`), then `ui.confirm` (outside the event loop: Ctrl-C at the prompt
    is an ordinary interrupt);
 5. `_execute`: the run record starts `incomplete`; `apply.apply_plan` writes customer by
    customer with one read per changed agreement just before its first write (staleness),
    journals every write, stops starting writes on SIGINT/SIGTERM, and verifies each write
    by its answer, re-reading only when an answer cannot tell (DESIGN 13.7);
 6. the run record is finished (`runlog`), INDEX.md rebuilt, under the lock;
 7. the e-mails are handed the finished record (`notify`), and their outcomes recorded.
A failure in 3–4 is recorded and e-mailed as a failed (or interrupted) run, then raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from reconciler.config.env import API_CREDENTIAL_VARS
from reconciler.connectwise.apply import apply_plan
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.payload import CATALOG, CATALOG_FIELDS, catalog_item
from reconciler.connectwise.state import read_owned, read_state
from reconciler.core import schedule
from reconciler.core.billed import Billed, billed_before
from reconciler.core.errors import ReconcileError, RunLogFailed
from reconciler.core.files import atomic_write
from reconciler.core.model import (
    Action,
    ActualState,
    Addition,
    ApplyResult,
    CatalogItem,
    Config,
    CustomerMap,
    CustomerResult,
    Period,
    PeriodKind,
    Plan,
    Usage,
)
from reconciler.core.nearest import did_you_mean
from reconciler.core.periods import period_for
from reconciler.engine import collector
from reconciler.engine.clients import Clients
from reconciler.engine.interrupt import Abandoned, Interrupted, StopSignals
from reconciler.engine.lock import config_lock
from reconciler.insight.report import Kind, Pricer, Row, unmapped_customer_rows
from reconciler.net.deadline import (
    EXIT_TIME_LIMIT,
    MAX_DURATION_VAR,
    TIME_LIMIT,
    RunDeadline,
    TimeLimit,
    max_duration,
)
from reconciler.net.http import Traffic
from reconciler.net.taskgroup import all_or_none2
from reconciler.notify import chat
from reconciler.notify import email as notify
from reconciler.plan import orphans, planfile, planner, verify
from reconciler.plan.snapshot import known_additions
from reconciler.records import ledger, runlog
from reconciler.records.record import EmailOutcome, RunRecord
from reconciler.secure.scrub import check_credentials, scrub
from reconciler.usage import fetch_usage, second_opinion

EXIT_UNSAFE = 3
# --max-duration / RECONCILE_MAX_DURATION -> seconds, for the commands (net.deadline).
resolve_max_duration = max_duration
READING = "Reading ConnectWise and ZeroTek…"
T = TypeVar("T")


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


@dataclass(frozen=True)
class Unmapped:
    period: Period
    rows: list[tuple[str, str, str, int]] = field(default_factory=list)
    email: EmailOutcome | None = None
    # Valued at the catalog price (report.Pricer): the SKU rows above, and ZeroTek
    # customers with usage but no mapping (unbilled revenue).
    valued_skus: list[Row] = field(default_factory=list)
    customers: list[Row] = field(default_factory=list)
    price_note: str | None = None  # why nothing could be priced (ConnectWise unreadable)

    @property
    def any(self) -> bool:
        return bool(self.rows or self.customers)

    @property
    def email_failed(self) -> bool:
        return self.email is not None and notify.delivery_failed(self.email)


# --- pure checks ---------------------------------------------------------------------------


def select_customers(config: Config, ids: Sequence[str] | None) -> list[CustomerMap]:
    """The customers to plan; an unknown `--customer` is an error before any request.

    Selecting a customer with `shared_agreement: true` selects every shared customer of its
    company too: the agreement's quantity is their sum, and planning one share alone would
    cut the others' licences."""
    if not ids:
        return list(config.customers)
    removed = orphans.removed_customers(config)
    unknown = [i for i in ids if config.customer(i) is None and i not in removed]
    if unknown:
        known = ", ".join(c.id for c in config.customers[:8])
        more = ", ..." if len(config.customers) > 8 else ""
        hint = did_you_mean(unknown[0], [*(c.id for c in config.customers), *sorted(removed)])
        raise ReconcileError(
            f"unknown customer {', '.join(map(repr, unknown))}: not in the mappings "
            f"(known: {known}{more}) nor in state/managed.json{hint}"
        )
    wanted = set(ids)
    shared = {
        c.company.casefold() for c in config.customers if c.id in wanted and c.shared_agreement
    }
    return [
        c
        for c in config.customers
        if c.id in wanted or (c.shared_agreement and c.company.casefold() in shared)
    ]


def selection(config: Config, ids: Sequence[str] | None) -> list[str] | None:
    """The ids a `--customer` plan answers for (None: everyone): the selected customers with
    the shares of their agreements, and those whose mapping was removed, known from the
    ledger, whose orphans are all there is to plan (DESIGN 13.1: `--customer C` includes
    C's orphans)."""
    if not ids:
        return None
    mapped = [c.id for c in select_customers(config, ids)]
    return [*mapped, *(i for i in dict.fromkeys(ids) if config.customer(i) is None)]


def company_peers(
    config: Config, customers: Sequence[CustomerMap], ids: Sequence[str] | None
) -> list[CustomerMap]:
    """What a `--customer` plan reads: the selection and every customer of the same
    companies, the only ones whose agreement can resolve to a selected one's (the planner
    brings those along, DESIGN 13.3). Every customer when none is selected."""
    if not ids:
        return list(customers)
    keys = {c.company.casefold() for c in customers}
    return [c for c in config.customers if c.company.casefold() in keys]


def check_enabled(config: Config) -> None:
    if not config.settings.enabled:
        raise Refused(
            "integration is deactivated (enabled: false in mappings/settings.yaml); "
            "nothing was applied. Run `reconcile activate` to turn it back on"
        )


def check_safe(plan: Plan, *, force: bool) -> None:
    if plan.unsafe and not force:
        reasons = "; ".join(plan.unsafe_reasons)
        # a reason may end with its own punctuation ("did you mean OKTA-MFA?")
        stop = "" if reasons.endswith((".", "?", "!")) else "."
        raise Refused(
            f"unsafe plan refused: {reasons}{stop} Review it and re-run with --force to apply "
            "anyway",
            EXIT_UNSAFE,
        )


# --- reading ConnectWise and ZeroTek ---------------------------------------------------------


async def make_plan(
    config: Config,
    period: Period,
    customer_ids: Sequence[str] | None,
    cw: ConnectWiseClient,
    clients: Clients,
    known: Mapping[int, tuple[Addition, ...]] | None = None,
) -> Planned:
    """Read both systems (concurrently) and plan; the snapshot is what staleness is
    judged against, in a saved plan and at the just-in-time re-read before each write.
    `known`: agreements whose additions are not read but taken from a saved plan (13.7)."""
    customers = company_peers(config, select_customers(config, customer_ids), customer_ids)
    ids = [c.id for c in customers] if customer_ids else None
    # All or none: a failed usage read must not leave ConnectWise requests running.
    actual, usage = await all_or_none2(
        read_state(cw, config, customers, known),
        fetch_usage(config, period, ids, zerotek=lambda: clients.zerotek(config)),
    )
    selected = selection(config, customer_ids)
    actual = await _with_ledger_agreements(cw, config, actual, selected, known)
    plan, _ = await _plan_checked(config, usage, actual, selected, clients)
    state = planfile.snapshot(plan, actual, config.owned_products)
    plan = replace(plan, state_fingerprint=planfile.fingerprint(state))
    return Planned(plan, state, billed=billed_before(config, plan, actual))


async def _plan_checked(
    config: Config,
    usage: Usage,
    actual: ActualState,
    selected: Sequence[str] | None,
    clients: Clients,
) -> tuple[Plan, Usage]:
    """Plan; when the bulk usage left customers at zero users on an agreement the plan
    removes lines from, ask ZeroTek again per customer first (13.2: the second opinion)
    and plan again with what it said."""
    plan = planner.plan(config, usage, actual, selected)
    if selected is not None:
        return plan, usage  # already the per-customer call
    emptied = {c.agreement_id for c in plan.changes if c.action is Action.REMOVE and not c.orphan}
    known = usage.known_customers or {}
    doubtful = [
        cp.customer_id
        for cp in plan.customers
        if cp.agreement_id in emptied
        and not usage.users.get(cp.customer_id)
        and cp.customer_id in known
    ]
    if not doubtful:
        return plan, usage
    zerotek = lambda: clients.zerotek(config)  # noqa: E731
    checked = await second_opinion(config, usage, doubtful, zerotek=zerotek)
    if checked.problems == usage.problems:
        return plan, usage
    return planner.plan(config, checked, actual, selected), checked


async def _with_ledger_agreements(
    cw: ConnectWiseClient,
    config: Config,
    actual: ActualState,
    selected: Sequence[str] | None,
    known: Mapping[int, tuple[Addition, ...]] | None = None,
) -> ActualState:
    """The ledger's agreements the mappings did not make us read (orphans, DESIGN 13.1);
    those a saved plan's snapshot holds (`known`, 13.7) are taken from it."""
    extra = orphans.ledger_agreements(config, selected, actual.additions)
    have = {i: known[i] for i in extra if known and i in known}
    if have:
        actual = replace(actual, additions={**actual.additions, **have})
    return await read_owned(cw, actual, [i for i in extra if i not in have], config.owned_products)


async def make_plans_with_baseline(
    config: Config,
    baseline: Config,
    period: Period,
    customer_ids: Sequence[str] | None,
    cw: ConnectWiseClient,
    clients: Clients,
) -> tuple[Planned, Plan]:
    """The head plan and the base branch's plan from ONE read of ConnectWise and ZeroTek
    (12.7): the union of both configs' customers and products is read once, each plan is
    derived from it, so a difference between them can only come from the mappings."""
    head_customers = company_peers(config, select_customers(config, customer_ids), customer_ids)
    chosen = selection(config, customer_ids)
    # (a customer whose mapping the head removed is still mapped in the base)
    ids = None if chosen is None else {c.id for c in head_customers} | set(chosen)
    base_customers = [c for c in baseline.customers if ids is None or c.id in ids]
    # Both variants of a customer whose mapping changed: companies and agreements of each.
    union = list({(c.id, c): c for c in [*head_customers, *base_customers]}.values())
    reading = replace(config, skus=tuple(dict.fromkeys((*config.skus, *baseline.skus))))
    actual, usage = await all_or_none2(
        read_state(cw, reading, union),
        fetch_usage(
            config,
            period,
            None if ids is None else sorted({c.id for c in union}),
            zerotek=lambda: clients.zerotek(config),
        ),
    )
    actual = await _with_ledger_agreements(cw, config, actual, chosen)
    if baseline.ledger is not None and baseline.ledger != config.ledger:
        actual = await _with_ledger_agreements(cw, baseline, actual, chosen)
    head, usage = await _plan_checked(config, usage, actual, chosen, clients)
    base_ids = [c.id for c in base_customers if chosen is None or c.id in set(chosen)]
    base = planner.plan(baseline, usage, actual, None if chosen is None else base_ids)
    # The snapshot a saved plan carries must be what `apply` will read with the head config
    # alone: the catalog the head maps, not the union.
    products = config.managed_products
    own = replace(actual, catalog={k: v for k, v in actual.catalog.items() if k in products})
    state = planfile.snapshot(head, own, config.owned_products)
    planned = Planned(replace(head, state_fingerprint=planfile.fingerprint(state)), state)
    return planned, base


async def verify_saved_plan(
    config: Config, saved: Planned, cw: ConnectWiseClient, clients: Clients
) -> Planned:
    """The one place a saved plan is checked before it is applied (DESIGN 12.4): it is
    re-derived now (ZeroTek usage for its period, the ConnectWise lists as they are, the
    current mappings, its customer selection) and must be identical to the file, else
    Refused with nothing written. The re-derived plan is what is applied: its safety verdict
    is recomputed, never read from the file. The comparison is `verify.differences` (pure).

    At the request floor (13.7) the agreements in the file's snapshot are not read here:
    their additions come from the snapshot, and apply reads each one it writes to just
    before its first write, skipping it as stale when it differs. Only agreements the
    snapshot lacks (customers that had errors) are read."""
    plan, saved_data = saved.plan, saved.data or {}
    if plan.config_digest != config.digest:
        raise Refused(
            "stale plan: the mappings changed since it was made; nothing was applied. "
            "Run `reconcile plan` again"
        )
    known = known_additions(saved.state)
    planned = await make_plan(config, plan.period, plan.selection, cw, clients, known)
    derived = planfile.plan_to_dict(planned.plan, planned.state, lazy_customers=True)
    found = verify.differences(saved_data, derived)
    if not found:
        return planned
    untouched = planfile.fingerprint(saved.state) == plan.state_fingerprint
    if untouched and saved.state != planned.state:
        drift = planfile.describe_drift(saved.state, planned.state)
        raise Refused(
            "stale plan: ConnectWise changed since it was made; nothing was applied. "
            "Run `reconcile plan` again.\n" + "\n".join(f"  {line}" for line in drift)
        )
    raise Refused(
        "the saved plan differs from the plan re-derived now (ZeroTek usage for its period, "
        "ConnectWise as it is, the current mappings): the file was edited or the usage "
        "changed; nothing was applied. Run `reconcile plan` again.\n"
        + "\n".join(f"  {line}" for line in found)
    )


# --- the orchestrator ----------------------------------------------------------------------


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
        """Fresh request statistics (`traffic`) for the command about to run: what -v shows
        and the run record keeps are that command's requests alone; and its clock
        (--max-duration), which its clients can consult."""
        self.deadline = RunDeadline(max_duration)
        # The throttles' waiting for a rate limit is bounded by it too (DESIGN 13.9).
        ends = None if max_duration is None else time.monotonic() + self.deadline.remaining()
        self.traffic = Traffic(notice=self.ui.notice, deadline=ends)
        self.clients = replace(self.clients, traffic=self.traffic, deadline=self.deadline)

    async def _in_time(self, coro: Coroutine[Any, Any, T]) -> T:
        """A read bounded by what is left of --max-duration: at the limit every request
        of it is cancelled (nothing is left running) and TimeLimit (exit 124) raised."""
        try:
            async with asyncio.timeout(self.deadline.timeout()):
                return await coro
        except TimeoutError:
            if not self.deadline.expired:
                raise
            raise TimeLimit(
                f"time limit: {self.deadline.describe()} passed while reading ConnectWise and "
                "ZeroTek; nothing was written. Re-run, or allow more time "
                f"({MAX_DURATION_VAR})"
            ) from None
        except TimeLimit as exc:
            # A throttle that cannot wait for the API's rate limit within the run's time
            # limit (13.9): the same limit, said the same way, with its cause.
            raise TimeLimit(
                f"time limit ({self.deadline.describe()}): {exc}; nothing was written. "
                f"Re-run later, or allow more time ({MAX_DURATION_VAR})"
            ) from None

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
        """`plan --if-due`: whether the last billing period is due today (DESIGN 12.1: its
        sync day up to CATCH_UP_DAYS after it, and no successful scheduled run for it in
        runs/). A sync day passed without one is posted to chat: each catch-up day, and
        once on the first day after the catch-up week."""
        billed = schedule.scheduled_successes(self.config.config_dir)
        decision = schedule.decide(today, self.config.settings.sync_day, billed)
        event = _missed_sync(decision, today, billed)
        if event is not None:
            self._chat(event)
        return decision

    def _check_not_applied(self, window: Period) -> None:
        if (window.start, window.end) in schedule.scheduled_successes(self.config.config_dir):
            raise AlreadyApplied(
                f"not applied: period {window.start.isoformat()}..{window.end.isoformat()} "
                "already has a successful scheduled sync in runs/ (a run that finished while "
                "this one waited); nothing was written"
            )

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
                    return await make_plan(self.config, window, req.customers, cw, self.clients)
                planned, base = await make_plans_with_baseline(
                    self.config, req.baseline, window, req.customers, cw, self.clients
                )
                return replace(planned, base=base)

        with self.ui.busy(READING):
            planned = self._run(self._in_time(go()))
        if self.config.ledger is None:
            self.ui.notice(orphans.NO_LEDGER)
        if req.out is not None:
            try:
                atomic_write(req.out, scrub(planfile.dumps(planned.plan, planned.state)))
            except OSError as exc:  # the CLI checked the path first; a race, a full disk...
                raise ReconcileError(
                    f"cannot write the plan to {req.out}: {exc.strerror or exc}"
                ) from None
        return planned

    # --- apply -----------------------------------------------------------------------------

    @collector.quiet()
    def apply(self, req: ApplyRequest) -> SyncOutcome:
        """Lock, plan or verify, check safety, confirm, then the journaled apply, record and
        e-mails. Raises (after recording a failed run) when the sync could not start."""
        self.recorded, self.unrecorded = None, False
        saved, window, trigger, smtp = self._guard(req)
        self._metered(req.max_duration)
        from_file = saved is not None
        with (
            StopSignals() as signals,
            config_lock(self.config.config_dir, req.command, req.lock_timeout),
        ):
            if req.if_due:  # under the lock: a run finishing now has written its record
                self._check_not_applied(window)
            planned: Planned | None = None
            try:
                planned = self._run(self._in_time(self._read(req, saved, window)))
                # Verified (or never given): the re-derived plan is what is applied. The
                # file's copy, tens of megabytes at 10,000 customers, goes now.
                saved = None
                self.ui.show_plan(planned.plan)
                check_safe(planned.plan, force=req.force)
                planned = replace(planned, plan=self._note_forced(planned.plan, req.force))
            except (ReconcileError, Interrupted) as exc:
                if isinstance(exc, Declined):
                    raise
                if not self._records_refusals(trigger):
                    self.unrecorded = True
                    raise
                with signals.deferred():
                    self._record_failure(planned, window, exc, trigger, req, smtp, signals)
                raise
            if self.ui.confirm is not None and not from_file and not self.ui.confirm(planned.plan):
                raise Declined("apply cancelled: nothing was applied")
            return self._execute(planned, trigger, req, smtp, signals)

    def _guard(
        self, req: ApplyRequest
    ) -> tuple[Planned | None, Period, str, notify.SmtpSettings | None]:
        """Everything that can be refused without a request or the lock."""
        trigger = runlog.detect_trigger(req.trigger, self.clients.environ)
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
        smtp = notify.smtp_from_env(self.clients.environ) if req.send_email else None
        window = saved.plan.period if saved else self.period(req.period, req.as_of)
        return saved, window, trigger, smtp

    async def _read(self, req: ApplyRequest, saved: Planned | None, window: Period) -> Planned:
        # Before any request, and inside apply's failure recording: a refused credential is
        # a failed run, recorded and e-mailed (naming the variable, never the value).
        check_credentials(API_CREDENTIAL_VARS, self.clients.environ)
        async with self.clients.connectwise(self.config) as cw:
            with self.ui.busy(READING):
                if saved is not None:
                    # never the file's own changes: the re-derived plan, found identical
                    return await verify_saved_plan(self.config, saved, cw, self.clients)
                return await make_plan(self.config, window, req.customers, cw, self.clients)

    def _execute(
        self,
        planned: Planned,
        trigger: str,
        req: ApplyRequest,
        smtp: notify.SmtpSettings | None,
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
            limited: list[bool] = []  # set when the time limit kept a write from starting

            def stop() -> bool:
                if signals.requested or handle.broken is not None:
                    return True
                if self.deadline.expired:
                    limited.append(True)
                    return True
                return False

            collector.settle()
            try:
                result = self._run(self._write(planned, handle, stop))
            except BaseException as exc:
                # A bug, not a sync outcome: still record what the journal knows, and say so.
                handle.record.requests = self.traffic.to_json()
                handle.fail(f"apply stopped by an internal error: {type(exc).__name__}: {exc}")
                raise
            finally:
                self.ui.applying(-1)
            handle.record.requests = self.traffic.to_json()
            stopped_by = signals.name or (TIME_LIMIT if limited else None)
            self._unrecord_if_only_stale(handle, result, trigger, stopped_by)
            try:
                handle.finish(result, interrupted_by=stopped_by)
            except RunLogFailed:
                # The e-mails still tell the truth (the record in memory); the error, with
                # every committed write, is what the command shows.
                self._notify(handle, plan, req, smtp, signals, chat_event=False)
                raise
            owned = self._rewrite_ledger(planned, result, handle.record.run_id)
            emails = self._notify(handle, plan, req, smtp, signals)
        failed = not owned or any(not c.ok for c in result.customers)
        code = signals.exit_code or (EXIT_TIME_LIMIT if limited else (1 if failed else 0))
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
        writing = [c for c in result.customers if c.plan.changes and not c.plan.errors]
        sent = any(c.results for c in result.customers)
        if not writing or not all(c.stale for c in writing) or sent or stopped_by:
            return
        if handle.broken is not None or self._records_refusals(trigger):
            return
        handle.discard()
        self.recorded, self.unrecorded = None, True
        raise Refused("\n".join(f"{c.plan.customer_id}: {e}" for c in writing for e in c.errors))

    def _notify(
        self,
        handle: runlog.RunHandle,
        plan: Plan | None,
        req: ApplyRequest,
        smtp: notify.SmtpSettings | None,
        signals: StopSignals,
        *,
        chat_event: bool = True,
    ) -> tuple[EmailOutcome, ...]:
        """E-mails, then the chat message; a second stop signal abandons what is left
        (the record says which were sent)."""
        with signals.notifying():
            emails = self._email(handle, plan, req, smtp)
            if chat_event and not signals.abandoned:
                with contextlib.suppress(Abandoned):
                    self._chat(chat.sync_outcome_event(handle.record))
        return emails

    def _rewrite_ledger(self, planned: Planned, result: ApplyResult, run_id: str) -> bool:
        """state/managed.json from this run's outcomes, still under the lock (13.1). A
        ledger that cannot be written is a failed run (one line naming the path): the
        next plan would miss what this one wrote."""
        try:
            ledger.rewrite(self.config, planned.state, result, run_id)
        except OSError as exc:
            self.ui.notice(
                f"error: cannot write {exc.filename or 'state/managed.json'}: "
                f"{exc.strerror or exc}; the lines this run wrote are in its run record"
            )
            return False
        return True

    async def _write(
        self, planned: Planned, handle: runlog.RunHandle, stop: Callable[[], bool]
    ) -> ApplyResult:
        async with self.clients.connectwise(self.config) as cw:
            return await apply_plan(
                planned.plan,
                self.config,
                cw,
                max_concurrency=self.config.settings.max_concurrency,
                on_customer=self.ui.customer_done,
                expected=planned.state,
                journal=handle,
                # A stop signal, a run log that refused a write, or the time limit.
                stop=stop,
            )

    def _email(
        self,
        handle: runlog.RunHandle,
        plan: Plan | None,
        req: ApplyRequest,
        smtp: notify.SmtpSettings | None,
    ) -> tuple[EmailOutcome, ...]:
        """Hand the finished record to the e-mails, then record how they went."""
        emails: list[EmailOutcome] = []
        try:
            emails = notify.notify_after_sync(
                self.config.settings, handle.record, plan, send=req.send_email, smtp=smtp
            )
        finally:  # the record's twin, summary and INDEX.md are written here, always
            if handle.broken is None:
                handle.set_emails(emails)
        return tuple(emails)

    def _chat(self, event: chat.ChatEvent) -> None:
        """The chat message (off unless RECONCILE_WEBHOOK_URL is set; never raises)."""
        outcome = chat.send(event, self._environ())
        if outcome is not None:
            self.ui.notice(str(outcome))

    def _records_refusals(self, trigger: str) -> bool:
        """Whether an apply that failed before its first write goes into runs/ (and is
        e-mailed): on a schedule or in CI, where nobody watches the terminal, yes; a person
        trying things at a terminal sees the error, and runs/ (committed, the audit of
        syncs) does not fill with attempts that changed nothing (docs/guide.md, "What a
        failed attempt records")."""
        env = self._environ()
        in_ci = env.get("GITHUB_ACTIONS", "").lower() == "true" or env.get("CI", "").lower() in {
            "true",
            "1",
        }
        return trigger == "scheduled" or in_ci

    def _environ(self) -> Mapping[str, str]:
        return os.environ if self.clients.environ is None else self.clients.environ

    def _note_forced(self, plan: Plan, force: bool) -> Plan:
        """An unsafe plan applied with --force says so in its run record (and e-mail), with
        who forced it when GitHub Actions ran it (the `force` input of sync.yml)."""
        if not (force and plan.unsafe):
            return plan
        env = self._environ()
        who = env.get("GITHUB_ACTOR", "").strip() if env.get("GITHUB_ACTIONS") else ""
        note = (
            "applied with --force although the plan is unsafe ("
            + "; ".join(plan.unsafe_reasons)
            + ")"
            + (f", forced by {who}" if who else "")
        )
        return replace(plan, warnings=(*plan.warnings, note))

    def _record_failure(
        self,
        planned: Planned | None,
        window: Period,
        exc: BaseException,
        trigger: str,
        req: ApplyRequest,
        smtp: notify.SmtpSettings | None,
        signals: StopSignals,
    ) -> None:
        """A sync that did not happen (API down, stale or unsafe plan, a signal before the
        first write) is still a sync outcome: record it and e-mail it, or a failed scheduled
        run would go unnoticed."""
        handle = runlog.start_run_or_refuse(
            self.config.config_dir,
            planned.plan if planned else None,
            trigger=trigger,
            started=dt.datetime.now(dt.UTC),
            period=window,
            currency=self.config.settings.currency,
        )
        handle.record.requests = self.traffic.to_json()  # what it took to fail (retries, 429s)
        self.recorded = handle.path
        if isinstance(exc, Interrupted):
            message = f"interrupted by {exc}: stopped before any write; nothing was written"
            handle.fail(message, interrupted_by=str(exc))
        elif isinstance(exc, TimeLimit):
            handle.fail(str(exc), interrupted_by=TIME_LIMIT)
        else:
            message = str(exc)
            handle.fail(message)
        with signals.notifying():
            self._email(handle, None, req, smtp)
            if not signals.abandoned:
                with contextlib.suppress(Abandoned):
                    self._chat(chat.sync_failed_event(handle.record))

    # --- check-unmapped -------------------------------------------------------------------

    @collector.quiet()
    def check_unmapped(self, as_of: dt.date | None, *, send_email: bool) -> Unmapped:
        """Current-period usage (one bulk ZeroTek fetch) -> customers using unmapped SKUs,
        and the daily e-mail while any remain."""
        check_credentials(API_CREDENTIAL_VARS, self.clients.environ)  # before any request
        smtp = notify.smtp_from_env(self.clients.environ) if send_email else None
        period = self.period(PeriodKind.CURRENT, as_of)
        self._metered()

        async def go() -> Unmapped:
            zerotek = lambda: self.clients.zerotek(self.config)  # noqa: E731
            usage = await fetch_usage(self.config, period, zerotek=zerotek)
            rows = notify.unmapped_skus(self.config, usage)
            catalog, note = await self._catalog()
            pricer = Pricer(self.config, catalog)
            valued = [
                pricer.row(Kind.UNMAPPED_SKU, cid, name, sku, n) for cid, name, sku, n in rows
            ]
            customers = unmapped_customer_rows(self.config, usage, pricer)
            return Unmapped(period, rows, None, valued, customers, note)

        found = self._run(go())
        email = notify.send_unmapped(
            self.config.settings,
            found.rows,
            send=send_email,
            smtp=smtp,
            period=period,
            valued=found.valued_skus,
            customers=found.customers,
            price_note=found.price_note,
        )
        return replace(found, email=email)

    async def _catalog(self) -> tuple[tuple[CatalogItem, ...], str | None]:
        """The whole catalog, to price unbilled usage. The daily reminder must still go out
        when ConnectWise cannot be read: then nothing is priced, and the e-mail says why."""
        try:
            async with self.clients.connectwise(self.config) as cw:
                items = await cw.get_all(CATALOG, fields=CATALOG_FIELDS)
            return tuple(catalog_item(r) for r in items), None
        except ReconcileError as exc:
            return (), f"not priced: ConnectWise catalog unreadable ({exc})"


def _missed_sync(
    decision: schedule.Decision, today: dt.date, billed: set[schedule.Window]
) -> chat.ChatEvent | None:
    period = decision.period
    if (period.start, period.end) in billed:
        return None
    late = (today - period.end).days
    if decision.due and late >= 1:
        return chat.missed_sync_event(period, today.isoformat(), late, catching_up=True)
    if not decision.due and late == schedule.CATCH_UP_DAYS + 1:
        return chat.missed_sync_event(period, today.isoformat(), late, catching_up=False)
    return None
