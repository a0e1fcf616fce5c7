"""`plan` and `apply`: the sync commands. Parsing and rendering only; engine does the work."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler import chat, engine, planfile, render, schedule
from reconciler.baseline import compare
from reconciler.config import load_config
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.engine import Refused
from reconciler.errors import ConfigError, Problem, ReconcileError
from reconciler.model import (
    ApplyResult,
    Config,
    CustomerResult,
    Location,
    Period,
    PeriodKind,
    Plan,
)
from reconciler.notify import notify_after_sync, notify_failure, smtp_from_env
from reconciler.periods import period_for, today_in
from reconciler.runlog import atomic_write, detect_trigger, start_run
from reconciler.schema import annotation_file, github_annotation


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


CustomerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--customer",
        metavar="ID",
        help="Only this ZeroTek customer id (repeatable).",
        show_default=False,
    ),
]
PeriodOption = Annotated[
    PeriodKind,
    typer.Option(
        "--period",
        help="last-billing-period: the latest complete period (what the 15th's sync uses); "
        "current: usage since the last sync day.",
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Pretend today is this date (default: today in billing.timezone).",
        show_default=False,
    ),
]


def parse_as_of(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReconcileError(f"--as-of: {value!r} is not a date, expected YYYY-MM-DD") from None


def _period(config: Config, kind: PeriodKind, as_of: str | None) -> Period:
    return period_for(kind, config.settings, parse_as_of(as_of))


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _busy(message: str) -> contextlib.AbstractContextManager[object]:
    """A spinner on a terminal while ConnectWise and ZeroTek are read (thousands of
    requests at scale); nothing in logs and pipes."""
    if not _is_tty(sys.stderr):
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)


READING = "Reading ConnectWise and ZeroTek…"


def run_plan(
    config_dir: Path,
    customers: list[str] | None,
    period: PeriodKind,
    as_of: str | None,
    out: Path | None,
    fmt: Format,
    detailed_exitcode: bool,
    if_due: bool = False,
    baseline_dir: Path | None = None,
) -> int:
    config = load_config(config_dir)
    engine.select_customers(config, customers)  # unknown ids fail before any request
    if if_due:
        if period is not PeriodKind.LAST_BILLING_PERIOD:
            raise ReconcileError(
                "--if-due plans the last billing period (DESIGN 12.1); drop --period current"
            )
        today = parse_as_of(as_of) or today_in(config.settings.timezone)
        billed = schedule.scheduled_successes(config.config_dir)
        decision = schedule.decide(today, config.settings.sync_day, billed)
        _chat_if_missed(decision, today, billed)
        if not decision.due:
            # The workflow applies only when a plan file exists: a leftover one must not be
            # mistaken for today's.
            if out is not None:
                out.unlink(missing_ok=True)
            typer.echo(decision.reason)
            return 0
        typer.echo(decision.reason, err=True)
    window = _period(config, period, as_of)
    baseline, note = _load_baseline(baseline_dir)

    async def go() -> tuple[engine.Planned, Plan | None]:
        async with engine.connectwise(config) as cw:
            if baseline is None:
                return await engine.make_plan(config, window, customers, cw), None
            return await engine.make_plans_with_baseline(config, baseline, window, customers, cw)

    with _busy(READING):
        planned, base_plan = asyncio.run(go())
    if out is not None:
        atomic_write(out, planfile.dumps(planned.plan, planned.state))
    if baseline_dir is not None:
        # No loadable base (a first pull request, or one that repairs broken mappings):
        # compared with an empty plan, every change is this pull request's.
        empty = replace(planned.plan, customers=())
        cmp = compare(planned.plan, base_plan if base_plan is not None else empty)
        text = {
            Format.MARKDOWN: lambda: render.markdown_compared(cmp, note),
            Format.JSON: lambda: render.json_compared(cmp, note),
            Format.TEXT: lambda: render.text(planned.plan, color=_is_tty(sys.stdout)),
        }[fmt]()
    else:
        text = render.render(planned.plan, fmt.value, color=_is_tty(sys.stdout))
    typer.echo(text, nl=False)
    if note:
        typer.echo(f"warning: {note}", err=True)
    if out is not None:
        typer.echo(f"Saved plan to {out}; apply exactly it with: reconcile apply {out}", err=True)
    if planned.plan.has_errors:
        # The plan (stdout) shows them in place; stderr carries them for scripts and CI.
        for cp in planned.plan.customers:
            for e in cp.errors:
                typer.echo(f"error: {cp.customer_id}: {e}", err=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in customer_annotations(config, planned.plan):
                typer.echo(line, err=True)
        return 1
    if detailed_exitcode and planned.plan.changes:
        return 2
    return 0


def _chat_if_missed(
    decision: schedule.Decision, today: dt.date, billed: set[schedule.Window]
) -> None:
    """A chat message when the sync day passed without a successful scheduled sync: each
    catch-up day, and once on the first day after the catch-up week."""
    period = decision.period
    if (period.start, period.end) in billed:
        return
    late = (today - period.end).days
    if decision.due and late >= 1:
        event = chat.missed_sync_event(period, today.isoformat(), late, catching_up=True)
    elif not decision.due and late == schedule.CATCH_UP_DAYS + 1:
        event = chat.missed_sync_event(period, today.isoformat(), late, catching_up=False)
    else:
        return
    _chat(event)


def _chat(event: chat.ChatEvent) -> None:
    outcome = chat.send(event, os.environ)
    if outcome is not None:
        typer.echo(str(outcome), err=True)


def _load_baseline(directory: Path | None) -> tuple[Config | None, str | None]:
    """The base branch's config, or None and why it could not be used."""
    if directory is None:
        return None, None
    if not (directory / "mappings").is_dir():
        return None, f"--baseline {directory}: no mappings/ there; every change is shown as new"
    try:
        return load_config(directory), None
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else "unknown problem"
        return None, (
            f"--baseline {directory}: the base branch's mappings do not load ({first}); "
            "every change is shown as this pull request's"
        )


def customer_annotations(config: Config, plan: Plan) -> list[str]:
    """One `::error` per customer error, at that customer's entry in its mapping file, so a
    pull request shows it on the line that names the customer."""
    lines = []
    for cp in plan.customers:
        where = getattr(config.customer(cp.customer_id), "location", None)
        for e in cp.errors:
            problem = Problem(
                where or Location("mappings/customers.yaml"), f"{cp.customer_id}: {e}"
            )
            lines.append(github_annotation(problem, annotation_file(config.config_dir, problem)))
    return lines


def _note_forced(plan: Plan, force: bool) -> Plan:
    """An unsafe plan applied with --force says so in its run record (and e-mail), with
    who forced it when GitHub Actions ran it (the `force` input of sync.yml)."""
    if not (force and plan.unsafe):
        return plan
    who = os.environ.get("GITHUB_ACTOR", "").strip() if os.environ.get("GITHUB_ACTIONS") else ""
    note = (
        "applied with --force although the plan is unsafe ("
        + "; ".join(plan.unsafe_reasons)
        + ")"
        + (f", forced by {who}" if who else "")
    )
    return replace(plan, warnings=(*plan.warnings, note))


class Declined(Refused):
    """Nobody said yes: not a failed sync, so nothing is recorded or e-mailed."""


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not (_is_tty(sys.stdin) and _is_tty(sys.stdout)):
        raise Declined("no terminal to confirm on and no --yes: nothing was applied")
    answer = typer.prompt("Apply these changes to ConnectWise? Only 'yes' will be accepted")
    if answer.strip().lower() != "yes":
        raise Declined("apply cancelled: nothing was applied")


def _report(result: ApplyResult) -> None:
    for cr in result.customers:
        for r in cr.results:
            note = f" ({r.note})" if r.note else ""
            mark = "ok" if r.ok else f"FAILED: {r.error}"
            typer.echo(
                f"  {cr.plan.customer_id}: {r.change.action.value} {r.change.product} "
                f"{r.change.before} → {r.change.after}: {mark}{note}"
            )
        for e in cr.errors:
            typer.echo(f"error: {cr.plan.customer_id}: {e}", err=True)


def run_apply(
    config_dir: Path,
    plan_file: Path | None,
    customers: list[str] | None,
    period: PeriodKind,
    as_of: str | None,
    *,
    yes: bool,
    force: bool,
    no_email: bool,
    trigger: str | None,
) -> int:
    config = load_config(config_dir)
    trigger_name = detect_trigger(trigger)
    if plan_file is not None and (
        customers or as_of or period is not PeriodKind.LAST_BILLING_PERIOD
    ):
        raise ReconcileError(
            "a saved plan is applied exactly as planned: --customer, --period and --as-of "
            "go to `reconcile plan`, not to `reconcile apply PLANFILE`"
        )
    saved = planfile.load(plan_file) if plan_file else None
    if saved is None:
        engine.select_customers(config, customers)
    engine.check_enabled(config)  # before any request: deactivated means hands off
    smtp = None if no_email else smtp_from_env()
    window = saved[0].period if saved else _period(config, period, as_of)

    def record_failure(plan: Plan | None, message: str) -> None:
        """A sync that did not happen (API down, stale or unsafe plan) is still a sync
        outcome: log it and e-mail it, or a failed scheduled run would go unnoticed."""
        handle = start_run(
            config.config_dir,
            plan,
            trigger=trigger_name,
            started=dt.datetime.now(dt.UTC),
            period=window,
        )
        emails = notify_failure(
            config.settings, message, window, handle.run_id, send=not no_email, smtp=smtp
        )
        handle.fail(message, emails=emails)
        _chat(chat.sync_failed_event(message, window, handle.run_id))

    async def go() -> ApplyResult:
        plan: Plan | None = None
        try:
            cw = engine.connectwise(config)
        except ReconcileError as exc:
            record_failure(None, str(exc))
            raise
        async with cw:
            try:
                with _busy(READING):
                    if saved is not None:
                        plan = saved[0]
                        await engine.check_fresh(config, plan, saved[1], cw)
                    else:
                        plan = (await engine.make_plan(config, window, customers, cw)).plan
                typer.echo(render.text(plan, color=_is_tty(sys.stdout)), nl=False)
                engine.check_safe(plan, force=force)
                plan = _note_forced(plan, force)
                if saved is None:
                    _confirm(yes)
            except ReconcileError as exc:
                if not isinstance(exc, Declined):
                    record_failure(plan, str(exc))
                raise
            return await _apply_recorded(config, plan, cw)

    async def _apply_recorded(config: Config, plan: Plan, cw: ConnectWiseClient) -> ApplyResult:
        handle = start_run(
            config.config_dir, plan, trigger=trigger_name, started=dt.datetime.now(dt.UTC)
        )
        progress = _Progress(sum(1 for cp in plan.customers if cp.changes))
        try:
            result = await engine.apply(config, plan, cw, on_customer=progress.step)
        except BaseException as exc:
            message = f"apply interrupted: {exc or type(exc).__name__}"
            emails = notify_failure(
                config.settings,
                message,
                plan.period,
                handle.run_id,
                send=not no_email,
                smtp=smtp,
            )
            handle.fail(message, emails=emails)
            _chat(chat.sync_failed_event(message, plan.period, handle.run_id))
            raise
        finally:
            progress.close()
        emails = notify_after_sync(
            config.settings, result, handle.run_id, send=not no_email, smtp=smtp
        )
        path = handle.finish(result, emails=emails)
        _report(result)
        for e in emails:
            typer.echo(f"e-mail {e.kind}: {e.detail}", err=True)
        _chat(chat.sync_outcome_event(result, handle.run_id))
        typer.echo(f"Run recorded: {path}")
        return result

    result = asyncio.run(go())
    writes = result.writes
    failed = sum(1 for c in result.customers if not c.ok)
    typer.echo(
        f"Apply complete: {writes} write{'s' if writes != 1 else ''}, "
        f"{len(result.customers) - failed} customers ok, {failed} with errors."
    )
    return 1 if failed else 0


class _Progress:
    """A progress bar on a terminal (stderr); silent otherwise, so logs stay clean."""

    def __init__(self, total: int) -> None:
        self._bar = None
        if total and _is_tty(sys.stderr):
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task("Applying", total=total)

    def step(self, result: CustomerResult) -> None:
        if self._bar is not None and result.plan.changes:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
