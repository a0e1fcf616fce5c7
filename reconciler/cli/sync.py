"""`plan` and `apply`: the sync commands. Parsing, showing and prompting only: the engine
(SyncEngine) does the work, including the run record and the e-mails.

A command hands over what the command line asked for as one object, `PlanOptions` or
`ApplyOptions`: the engine's request (built by the command) and how to show the answer."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer

from reconciler.cli import term
from reconciler.cli.application import command_for
from reconciler.cli.json_output import apply_json
from reconciler.cli.options import Format, OutputFormat
from reconciler.cli.progress import busy, is_tty
from reconciler.config.loader import load_config, load_settings_only
from reconciler.config.schema import annotation_file, github_annotation
from reconciler.core.errors import ConfigError, Problem, ReconcileError
from reconciler.core.files import read_json
from reconciler.core.model import Config, Location, PeriodKind, Settings
from reconciler.core.periods import today_in
from reconciler.core.plan import Plan
from reconciler.core.results import CustomerResult
from reconciler.engine.clients import Clients
from reconciler.engine.interface import (
    AlreadyApplied,
    ApplyRequest,
    Declined,
    Planned,
    PlanRequest,
    SyncOutcome,
    Ui,
)
from reconciler.engine.manager import SyncEngine
from reconciler.plan import render
from reconciler.plan.baseline import compare, connection_from_base
from reconciler.plan.baseline_render import json_compared, markdown_compared
from reconciler.records.record import RunRecord
from reconciler.secure.untrusted import json_dumps, plain, workflow_command

__all__ = [
    "ApplyOptions",
    "PlanOptions",
    "apply_failure_shown",
    "parse_as_of",
    "requests_shown",
    "run_apply",
    "run_plan",
]


def parse_as_of(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReconcileError(f"--as-of: {value!r} is not a date, expected YYYY-MM-DD") from None


@dataclass(frozen=True)
class PlanOptions:
    """`plan` as the command line asked for it: the engine's request, and how to show it."""

    request: PlanRequest  # its `baseline` is loaded by run_plan, from baseline_dir
    fmt: Format = Format.TEXT
    detailed_exitcode: bool = False
    if_due: bool = False
    verbose: bool = False
    baseline_dir: Path | None = None  # --baseline: the base branch's config directory


@dataclass(frozen=True)
class _Baseline:
    """The base branch's config (None: it does not load), and what to say about it."""

    config: Config | None
    notes: list[str]


def run_plan(config_dir: Path, options: PlanOptions, clients: Clients | None = None) -> int:
    config = load_config(config_dir)
    if not config.settings.enabled:
        _note_deactivated(config_dir)
    baseline = None
    if options.baseline_dir is not None:
        baseline = _load_baseline(options.baseline_dir)
        # A pull request never chooses where the keys go (DESIGN 13.6).
        base_settings = _base_settings(baseline.config, options.baseline_dir)
        config, changed = connection_from_base(config, base_settings)
        baseline = replace(baseline, notes=baseline.notes + changed)
    engine = SyncEngine(config, clients, ui=Ui(busy=busy, notice=_notice))
    with requests_shown(engine, options.verbose):
        return _plan(engine, config, options, baseline)


def _note_deactivated(config_dir: Path) -> None:
    """Only `status` and the hidden `is-enabled` said so: a plan that `apply` will not make
    must say it up front (stderr: stdout stays the plan)."""
    typer.echo(
        "note: integration deactivated (enabled: false in mappings/settings.yaml): "
        "`apply` and the scheduled sync change nothing; turn it on with "
        f"`{command_for(config_dir, 'activate')}`",
        err=True,
    )


@contextlib.contextmanager
def requests_shown(engine: SyncEngine, verbose: bool) -> Iterator[None]:
    """-v: the requests the command sent, per API, on stderr when it ends (also when it
    fails: retries and 429s are often why)."""
    try:
        yield
    finally:
        if verbose:
            from reconciler.records import requestview

            lines = requestview.text_lines(engine.traffic.to_json())
            typer.echo("\n".join(["Requests:", *(f"  {line}" for line in lines)]), err=True)


def _due(engine: SyncEngine, config: Config, request: PlanRequest) -> bool:
    """`--if-due`: whether to plan today; says why on stdout when not, stderr when so."""
    if request.period is not PeriodKind.LAST_BILLING_PERIOD:
        raise ReconcileError(
            "--if-due plans the last billing period (DESIGN 12.1); drop --period current"
        )
    today = request.as_of or today_in(config.settings.timezone)
    decision = engine.due(today)  # also posts a missed sync to chat
    if not decision.due:
        # The workflow applies only when a plan file exists: a leftover one must not be
        # mistaken for today's.
        if request.out is not None:
            request.out.unlink(missing_ok=True)
        typer.echo(decision.reason)
        return False
    typer.echo(decision.reason, err=True)
    return True


def _plan(
    engine: SyncEngine, config: Config, options: PlanOptions, baseline: _Baseline | None
) -> int:
    request = options.request
    engine.check_customers(request.customers)  # unknown ids fail before any request
    if options.if_due and not _due(engine, config, request):
        return 0
    notes = baseline.notes if baseline is not None else []
    base = baseline.config if baseline is not None else None
    planned = engine.plan(replace(request, baseline=base))
    text = _plan_text(planned, options.fmt, baseline is not None, " ".join(notes) or None)
    typer.echo(text, nl=False)
    for line in notes:
        typer.echo(f"warning: {plain(line)}", err=True)
    if request.out is not None:
        again = command_for(config.config_dir, "apply", shlex.quote(str(request.out)))
        typer.echo(f"Saved plan to {request.out}; apply exactly it with: {again}", err=True)
    if planned.plan.has_errors:
        _show_errors(config, planned.plan)
        return 1
    shown_as_text = options.fmt is Format.TEXT and request.out is None
    if shown_as_text and planned.plan.changes and config.settings.enabled:
        _next_apply(config, request, planned.plan)
    if options.detailed_exitcode and planned.plan.changes:
        return 2
    return 0


def _show_errors(config: Config, plan: Plan) -> None:
    """The plan (stdout) shows them in place; stderr carries them for scripts and CI."""
    for cp in plan.customers:
        for e in cp.errors:
            typer.echo(f"error: {plain(cp.customer_id)}: {plain(e)}", err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in customer_annotations(config, plan):
            workflow_command(line, err=True)  # meant: passes the guard


def _next_apply(config: Config, request: PlanRequest, plan: Plan) -> None:
    """The `apply` that makes these changes: the same selection, since a bare `apply`
    after `plan --customer X` would apply everyone."""
    same = [w for c in request.customers or () for w in ("--customer", shlex.quote(c))]
    if request.period is not PeriodKind.LAST_BILLING_PERIOD:
        same += ["--period", request.period.value]
    if request.as_of is not None:
        same += ["--as-of", request.as_of.isoformat()]
    apply = command_for(config.config_dir, "apply", *same)
    typer.echo(
        f"next: `{apply} --force` would make these changes: apply refuses this unsafe "
        "plan without --force (review the reasons above first)"
        if plan.unsafe
        else f"next: `{apply}` makes these changes (it shows the plan again and asks first)",
        err=True,
    )


def _plan_text(planned: Planned, fmt: Format, compared: bool, note: str | None) -> str:
    """The plan as shown; with --baseline (`compared`), Markdown and JSON compare it with
    the base branch's plan (text shows the plan alone)."""
    if not compared or fmt is Format.TEXT:
        return render.render(planned.plan, fmt.value, color=term.use_color(sys.stdout))
    # No loadable base (a first pull request, or one that repairs broken mappings):
    # compared with an empty plan, every change is this pull request's.
    empty = replace(planned.plan, customers=())
    cmp = compare(planned.plan, planned.base if planned.base is not None else empty)
    if fmt is Format.MARKDOWN:
        return markdown_compared(cmp, note)
    return json_compared(cmp, note)


def _notice(line: str) -> None:
    typer.echo(line, err=True)


def _load_baseline(directory: Path) -> _Baseline:
    """The base branch's config, or None and why it could not be used."""
    if not (directory / "mappings").is_dir():
        note = f"--baseline {directory}: no mappings/ there; every change is shown as new"
        return _Baseline(None, [note])
    try:
        return _Baseline(load_config(directory), [])
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else "unknown problem"
        note = (
            f"--baseline {directory}: the base branch's mappings do not load ({first}); "
            "every change is shown as this pull request's"
        )
        return _Baseline(None, [note])


def _base_settings(base: Config | None, directory: Path) -> Settings | None:
    """The base branch's settings: from its config, else its settings.yaml alone (mappings
    being repaired by this pull request), else None (no settings there)."""
    if base is not None:
        return base.settings
    try:
        return load_settings_only(directory)
    except ConfigError:
        return None


def customer_annotations(config: Config, plan: Plan) -> list[str]:
    """One `::error` per customer error, at that customer's entry in its mapping file, so a
    pull request shows it on the line that names the customer."""
    lines = []
    for cp in plan.customers:
        where = getattr(config.customer(cp.customer_id), "location", None)
        for e in cp.errors:
            problem = Problem(
                where or Location("mappings/customers.yaml"), plain(f"{cp.customer_id}: {e}")
            )
            lines.append(github_annotation(problem, annotation_file(config.config_dir, problem)))
    return lines


def _confirm(yes: bool, *, to_stderr: bool = False) -> Callable[[Plan], bool] | None:
    """The prompt (to_stderr: `--format json`, whose stdout is the JSON alone)."""
    if yes:
        return None

    def ask(plan: Plan) -> bool:
        if not _can_confirm(to_stderr):
            raise Declined("no terminal to confirm on and no --yes: nothing was applied")
        answer = typer.prompt(
            "Apply these changes to ConnectWise? Only 'yes' will be accepted", err=to_stderr
        )
        return str(answer).strip().lower() == "yes"

    return ask


def _can_confirm(to_stderr: bool) -> bool:
    """The prompt needs a person: stdin and the stream the plan is shown on are terminals."""
    return is_tty(sys.stdin) and is_tty(sys.stderr if to_stderr else sys.stdout)


def _not_started(outcome: SyncOutcome) -> tuple[int, int]:
    """(changes, customers) an interrupted apply never started: what a re-run would do."""
    changes = customers = 0
    for cr in outcome.result.customers:
        if cr.plan.errors:
            continue  # never applied, interrupted or not
        left = len(cr.plan.changes) - len(cr.results)
        if left > 0:
            changes, customers = changes + left, customers + 1
    return changes, customers


def _interrupted_line(outcome: SyncOutcome, config_dir: Path) -> str:
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


def _report(outcome: SyncOutcome, config_dir: Path, *, err: bool = False) -> None:
    """What apply did, for people (err: on stderr, under `--format json`)."""
    for cr in outcome.result.customers:
        for r in cr.results:
            note = f" ({plain(r.note)})" if r.note else ""
            mark = "ok" if r.ok else f"{'UNKNOWN' if r.unknown else 'FAILED'}: {plain(r.error)}"
            c = r.change
            price = f", price {render.price_words(c)}" if c.repriced else ""
            typer.echo(
                f"  {plain(cr.plan.customer_id)}: {c.action.value} "
                f"{plain(c.product)} {c.before} → {c.after}{price}: {mark}{note}",
                err=err,
            )
        for e in cr.errors:
            typer.echo(f"error: {plain(cr.plan.customer_id)}: {plain(e)}", err=True)
    for mail in outcome.emails:
        typer.echo(f"e-mail {mail.kind}: {plain(mail.detail)}", err=True)
    typer.echo(f"Run recorded: {outcome.record_path}", err=err)
    totals = outcome.record.totals
    failed = sum(1 for c in outcome.result.customers if not c.ok)
    if outcome.interrupted_by:
        typer.echo(_interrupted_line(outcome, config_dir), err=True)
        return
    typer.echo(
        f"Apply complete: {totals.writes} write{'s' if totals.writes != 1 else ''}, "
        f"{len(outcome.result.customers) - failed} customers ok, {failed} with errors.",
        err=err,
    )
    details = command_for(config_dir, "activity", outcome.record.run_id)
    typer.echo(f"next: `{details}` shows this run; runs/INDEX.md lists them all", err=True)


@dataclass(frozen=True)
class ApplyOptions:
    """`apply` as the command line asked for it: the engine's request, whether to ask
    first, and how to show what it did."""

    request: ApplyRequest
    yes: bool = False  # --yes: no confirmation
    fmt: OutputFormat = OutputFormat.TEXT
    verbose: bool = False

    @property
    def as_json(self) -> bool:
        return self.fmt is OutputFormat.JSON


def run_apply(config_dir: Path, options: ApplyOptions, clients: Clients | None = None) -> int:
    as_json = options.as_json
    if not options.yes and options.request.plan_file is None and not _can_confirm(as_json):
        _refuse_unconfirmable(config_dir, as_json)
    ui = _apply_ui(options.yes, as_json)
    engine: SyncEngine | None = None
    with apply_failure_shown(as_json, lambda: engine):
        try:
            engine = SyncEngine(load_config(config_dir), clients, ui=ui)
            with requests_shown(engine, options.verbose):
                outcome = engine.apply(options.request)
                _report(outcome, config_dir, err=as_json)
        except AlreadyApplied as exc:
            typer.echo(str(exc), err=as_json)
            if as_json:
                typer.echo(json_dumps(apply_json(None, None, 0, str(exc)), indent=2))
            return 0
    if as_json:
        doc = apply_json(outcome.record, outcome.record_path, outcome.exit_code)
        typer.echo(json_dumps(doc, indent=2))
    return outcome.exit_code


def _refuse_unconfirmable(config_dir: Path, as_json: bool) -> None:
    """Refused before any work (no API read, no plan shown): nobody can answer the prompt.
    A saved plan is not confirmed (it was reviewed when it was made), so it may go on."""
    review = command_for(config_dir, "plan", "--out", "plan.json")
    error = (
        "apply without --yes needs a terminal to confirm on (there is none): nothing was "
        f"read or applied. Review with `{review}`, then "
        f"`{command_for(config_dir, 'apply', 'plan.json')}`; or pass --yes"
    )
    if as_json:  # stdout is the JSON alone
        typer.echo(json_dumps(apply_json(None, None, 1, error), indent=2))
    raise ReconcileError(error)


def _apply_ui(yes: bool, as_json: bool) -> Ui:
    """What apply shows and asks, on stdout, or on stderr under `--format json`."""
    progress = _Progress()
    return Ui(
        busy=busy,
        notice=_notice,
        show_plan=lambda plan: typer.echo(
            render.text(plan, color=term.use_color(sys.stderr if as_json else sys.stdout)),
            nl=False,
            err=as_json,
        ),
        confirm=_confirm(yes, to_stderr=as_json),
        customer_done=progress.step,
        applying=progress.applying,
    )


@contextlib.contextmanager
def apply_failure_shown(
    as_json: bool, engine: Callable[[], SyncEngine | None] = lambda: None
) -> Iterator[None]:
    """A failed apply says whether runs/ recorded it and, under `--format json`, still
    prints the JSON (naming the failed run's record, if any); the error is re-raised.
    `engine`: the one that ran, once made."""
    try:
        yield
    except (ReconcileError, KeyboardInterrupt) as exc:
        ran = engine()
        if ran is not None and ran.unrecorded and isinstance(exc, ReconcileError):
            exc.args = (f"{exc}\n{NOT_RECORDED}",)
        if as_json:
            code = exc.exit_code if isinstance(exc, ReconcileError) else _signal_exit(exc)
            recorded = ran.recorded if ran is not None else None
            doc = apply_json(_read_record(recorded), recorded, code, _error_text(exc))
            typer.echo(json_dumps(doc, indent=2))
        raise


NOT_RECORDED = (
    "(not recorded in runs/: nothing was written, and runs/ keeps the syncs that ran; "
    "scheduled and CI runs record such failures)"
)


def _signal_exit(exc: KeyboardInterrupt) -> int:
    signum = getattr(exc, "signum", None)
    return 128 + signum if isinstance(signum, int) else 130


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return "; ".join(f"{p.location}: {p.message}" for p in exc.problems) or "invalid mappings"
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted by {exc}" if str(exc) else "interrupted"
    return str(exc)


def _read_record(path: Path | None) -> RunRecord | None:
    """The run record a failed apply wrote (it was recorded, then raised)."""
    if path is None:
        return None
    try:
        return RunRecord.from_json(read_json(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class _Progress:
    """A progress bar on a terminal (stderr); silent otherwise, so logs stay clean."""

    def __init__(self) -> None:
        self._bar: Any = None

    def applying(self, total: int) -> None:
        if total < 0:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            return
        if total and is_tty(sys.stderr):
            from rich.progress import Progress

            # stderr: stdout is for results (the JSON of `apply --format json`)
            console = term.stderr_console()
            self._bar = Progress(transient=True, console=console)
            self._bar.start()
            self._task = self._bar.add_task("Applying", total=total)

    def step(self, result: CustomerResult) -> None:
        if self._bar is not None and result.plan.changes:
            self._bar.advance(self._task)
