"""`plan` and `apply`: the sync commands. Parsing and rendering only; engine does the work."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler import engine, planfile, render
from reconciler.config import load_config
from reconciler.engine import Refused
from reconciler.errors import ReconcileError
from reconciler.model import ApplyResult, Config, CustomerResult, Period, PeriodKind, Plan
from reconciler.notify import notify_after_sync, notify_failure, smtp_from_env
from reconciler.periods import period_for
from reconciler.runlog import atomic_write, detect_trigger, start_run


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
) -> int:
    config = load_config(config_dir)
    engine.select_customers(config, customers)  # unknown ids fail before any request
    window = _period(config, period, as_of)

    async def go() -> engine.Planned:
        async with engine.connectwise(config) as cw:
            return await engine.make_plan(config, window, customers, cw)

    with _busy(READING):
        planned = asyncio.run(go())
    if out is not None:
        atomic_write(out, planfile.dumps(planned.plan, planned.state))
    typer.echo(render.render(planned.plan, fmt.value, color=_is_tty(sys.stdout)), nl=False)
    if out is not None:
        typer.echo(f"Saved plan to {out}; apply exactly it with: reconcile apply {out}", err=True)
    if planned.plan.has_errors:
        return 1
    if detailed_exitcode and planned.plan.changes:
        return 2
    return 0


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not (_is_tty(sys.stdin) and _is_tty(sys.stdout)):
        raise Refused("no terminal to confirm on and no --yes: nothing was applied")
    answer = typer.prompt("Apply these changes to ConnectWise? Only 'yes' will be accepted")
    if answer.strip().lower() != "yes":
        raise Refused("apply cancelled: nothing was applied")


def _report(result: ApplyResult) -> None:
    for cr in result.customers:
        if cr.errors and cr.plan.errors and not cr.results:
            continue  # planning errors were already shown with the plan
        for r in cr.results:
            note = f" ({r.note})" if r.note else ""
            mark = "ok" if r.ok else f"FAILED: {r.error}"
            typer.echo(
                f"  {cr.plan.customer_id}: {r.change.action.value} {r.change.product} "
                f"{r.change.before} → {r.change.after}: {mark}{note}"
            )
        for e in cr.errors:
            if e not in cr.plan.errors:
                typer.echo(f"  {cr.plan.customer_id}: error: {e}", err=True)


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
    saved: tuple[Plan, dict] | None = planfile.load(plan_file) if plan_file else None
    if saved is None:
        engine.select_customers(config, customers)
    try:
        engine.check_enabled(config)  # before any request: deactivated means hands off
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.code
    smtp = None if no_email else smtp_from_env()

    async def go() -> ApplyResult:
        async with engine.connectwise(config) as cw:
            with _busy(READING):
                if saved is not None:
                    plan, state = saved
                    await engine.check_fresh(config, plan, state, cw)
                else:
                    window = _period(config, period, as_of)
                    plan = (await engine.make_plan(config, window, customers, cw)).plan
            typer.echo(render.text(plan, color=_is_tty(sys.stdout)), nl=False)
            try:
                engine.check_safe(plan, force=force)
            except Refused as exc:
                _record_refusal(config, plan, trigger_name, str(exc), smtp, no_email)
                raise
            if saved is None:
                _confirm(yes)
            handle = start_run(
                config.config_dir, plan, trigger=trigger_name, started=dt.datetime.now(dt.UTC)
            )
            progress = _Progress(sum(1 for cp in plan.customers if cp.changes))
            try:
                result = await engine.apply(config, plan, cw, on_customer=progress.step)
            except BaseException as exc:
                progress.close()
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
                raise
            progress.close()
            emails = notify_after_sync(
                config.settings, result, handle.run_id, send=not no_email, smtp=smtp
            )
            path = handle.finish(result, emails=emails)
            _report(result)
            for e in emails:
                typer.echo(f"e-mail {e.kind}: {e.detail}", err=True)
            typer.echo(f"Run recorded: {path}")
            return result

    try:
        result = asyncio.run(go())
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.code
    writes = result.writes
    failed = sum(1 for c in result.customers if not c.ok)
    typer.echo(
        f"Apply complete: {writes} write{'s' if writes != 1 else ''}, "
        f"{len(result.customers) - failed} customers ok, {failed} with errors."
    )
    return 1 if failed else 0


def _record_refusal(
    config: Config, plan: Plan, trigger: str, message: str, smtp, no_email: bool
) -> None:
    """An unsafe plan is a sync that did not happen: log it and tell people."""
    handle = start_run(config.config_dir, plan, trigger=trigger, started=dt.datetime.now(dt.UTC))
    emails = notify_failure(
        config.settings, message, plan.period, handle.run_id, send=not no_email, smtp=smtp
    )
    handle.fail(message, emails=emails)


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
