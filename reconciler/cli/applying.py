"""`apply` run from the command line: ApplyOptions in, the confirmation asked, the progress
bar drawn, the outcome reported (cli.apply_report), an exit code out.

Prompting and showing only: the engine (SyncEngine) plans, guards, writes, records and
e-mails. Under `--format json` stdout is the JSON document alone; the plan, the prompt
and the progress go to stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from reconciler.cli import term
from reconciler.cli.application import command_for
from reconciler.cli.apply_failure import apply_failure_shown
from reconciler.cli.apply_report import report_outcome
from reconciler.cli.json_output import apply_json
from reconciler.cli.options import OutputFormat
from reconciler.cli.progress import busy, is_tty, notice, requests_shown
from reconciler.config.loader import load_config
from reconciler.core.errors import ReconcileError
from reconciler.core.plan import Plan
from reconciler.core.results import CustomerResult
from reconciler.engine.clients import Clients
from reconciler.engine.interface import AlreadyApplied, ApplyRequest, Declined, Ui
from reconciler.engine.manager import SyncEngine
from reconciler.plan import render
from reconciler.secure.untrusted import json_dumps

__all__ = ["ApplyOptions", "run_apply"]


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
                report_outcome(outcome, config_dir, err=as_json)
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
        notice=notice,
        show_plan=lambda plan: typer.echo(
            render.text(plan, color=term.use_color(sys.stderr if as_json else sys.stdout)),
            nl=False,
            err=as_json,
        ),
        confirm=_confirm(yes, to_stderr=as_json),
        customer_done=progress.step,
        applying=progress.applying,
    )


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
