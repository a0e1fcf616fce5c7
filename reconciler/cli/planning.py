"""`plan` run from the command line: PlanOptions in, the plan shown, an exit code out.

Showing and hinting only: the engine (SyncEngine) reads and plans. stdout carries the plan
alone (text, Markdown or JSON); errors, notes and the next command go to stderr."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import typer

from reconciler.cli import term
from reconciler.cli.application import command_for
from reconciler.cli.base_branch import Baseline, base_settings, load_baseline
from reconciler.cli.options import Format
from reconciler.cli.progress import busy, notice, requests_shown
from reconciler.config.loader import load_config
from reconciler.config.problem_output import annotation_file, github_annotation
from reconciler.core.errors import Problem, ReconcileError
from reconciler.core.model import Config, Location, PeriodKind
from reconciler.core.periods import today_in
from reconciler.core.plan import Plan
from reconciler.engine.clients import Clients
from reconciler.engine.interface import Planned, PlanRequest, Ui
from reconciler.engine.manager import SyncEngine
from reconciler.plan import render
from reconciler.plan.baseline import compare, connection_from_base
from reconciler.plan.baseline_render import json_compared, markdown_compared
from reconciler.secure.untrusted import plain, workflow_command

__all__ = ["PlanOptions", "customer_annotations", "run_plan"]


@dataclass(frozen=True)
class PlanOptions:
    """`plan` as the command line asked for it: the engine's request, and how to show it."""

    request: PlanRequest  # its `baseline` is loaded by run_plan, from baseline_dir
    fmt: Format = Format.TEXT
    detailed_exitcode: bool = False
    if_due: bool = False
    verbose: bool = False
    baseline_dir: Path | None = None  # --baseline: the base branch's config directory


def run_plan(config_dir: Path, options: PlanOptions, clients: Clients | None = None) -> int:
    config = load_config(config_dir)
    if not config.settings.enabled:
        _note_deactivated(config_dir)
    baseline = None
    if options.baseline_dir is not None:
        baseline = load_baseline(options.baseline_dir)
        # A pull request never chooses where the keys go (DESIGN 13.6).
        settings = base_settings(baseline.config, options.baseline_dir)
        config, changed = connection_from_base(config, settings)
        baseline = replace(baseline, notes=baseline.notes + changed)
    engine = SyncEngine(config, clients, ui=Ui(busy=busy, notice=notice))
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
    engine: SyncEngine, config: Config, options: PlanOptions, baseline: Baseline | None
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
