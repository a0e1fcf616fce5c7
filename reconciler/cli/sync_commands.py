"""The sync commands: `plan` (what a sync would change), `apply` (make ConnectWise match)
and `show` (a saved plan again).

Each turns its options into one request for the engine (PlanRequest, ApplyRequest) and
hands it over with how to show the answer; cli.planning and cli.applying (imported inside
the commands: they load the engine and the HTTP client) run it and map it to an exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.application import (
    ConfigDirOption,
    app,
    config_dir_of,
    lock_command,
    verbose_of,
)
from reconciler.cli.options import (
    ApplyFormatOption,
    ApplyIfDueOption,
    ApplyNoEmailOption,
    AsOfOption,
    BaselineOption,
    CustomerOption,
    DetailedExitcodeOption,
    ForceOption,
    Format,
    LockTimeoutOption,
    MaxDurationOption,
    OutputFormat,
    PeriodOption,
    PlanFileArgument,
    PlanFormatOption,
    PlanIfDueOption,
    PlanOutOption,
    TriggerOption,
    YesOption,
    parse_as_of,
)
from reconciler.core.vocabulary import PeriodKind


@app.command()
def plan(
    ctx: typer.Context,
    customer: CustomerOption = None,
    period: PeriodOption = PeriodKind.LAST_BILLING_PERIOD,
    as_of: AsOfOption = None,
    out: PlanOutOption = None,
    fmt: PlanFormatOption = Format.TEXT,
    detailed_exitcode: DetailedExitcodeOption = False,
    if_due: PlanIfDueOption = False,
    max_duration: MaxDurationOption = None,
    baseline: BaselineOption = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """Show what a sync would change. Read-only: never writes to ConnectWise.

    Exit 0 (also with changes, unless --detailed-exitcode: then 2), 1 on any error.
    """
    from reconciler.cli.planning import PlanOptions, run_plan
    from reconciler.engine.interface import PlanRequest, resolve_max_duration

    seconds = resolve_max_duration(max_duration)
    request = PlanRequest(
        customers=customer, period=period, as_of=parse_as_of(as_of), out=out, max_duration=seconds
    )
    options = PlanOptions(
        request,
        fmt=fmt,
        detailed_exitcode=detailed_exitcode,
        if_due=if_due,
        verbose=verbose_of(ctx),
        baseline_dir=baseline,
    )
    raise typer.Exit(run_plan(config_dir_of(ctx, config_dir), options))


@app.command()
def apply(
    ctx: typer.Context,
    plan_file: PlanFileArgument = None,
    customer: CustomerOption = None,
    period: PeriodOption = PeriodKind.LAST_BILLING_PERIOD,
    as_of: AsOfOption = None,
    yes: YesOption = False,
    force: ForceOption = False,
    no_email: ApplyNoEmailOption = False,
    trigger: TriggerOption = None,
    fmt: ApplyFormatOption = OutputFormat.TEXT,
    lock_timeout: LockTimeoutOption = 0,
    if_due: ApplyIfDueOption = False,
    max_duration: MaxDurationOption = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """Make ConnectWise match ZeroTek usage: plan, show, confirm, apply, verify, record, e-mail.

    Exit 0 on success, 1 on any error (customers without errors are still applied; also
    when another apply holds the config directory's lock), 3 when the plan is unsafe and
    --force was not given, 124 when --max-duration ended it, 130/143 when interrupted by
    SIGINT/SIGTERM (what was written is recorded).
    """
    from reconciler.cli.apply_failure import apply_failure_shown
    from reconciler.cli.applying import ApplyOptions, run_apply
    from reconciler.engine.interface import ApplyRequest, resolve_max_duration

    # A malformed --as-of or --max-duration fails like the apply would: in the JSON too.
    with apply_failure_shown(fmt is OutputFormat.JSON):
        request = ApplyRequest(
            plan_file=plan_file,
            customers=customer,
            period=period,
            as_of=parse_as_of(as_of),
            force=force,
            send_email=not no_email,
            trigger=trigger,
            lock_timeout=lock_timeout,
            command=lock_command(),
            if_due=if_due,
            max_duration=resolve_max_duration(max_duration),
        )
    options = ApplyOptions(request, yes=yes, fmt=fmt, verbose=verbose_of(ctx))
    raise typer.Exit(run_apply(config_dir_of(ctx, config_dir), options))


@app.command()
def show(
    plan_path: Annotated[
        Path,
        typer.Argument(metavar="PLANFILE", help="A plan saved by `reconcile plan --out FILE`."),
    ],
    config_dir: ConfigDirOption = None,  # accepted like everywhere; a plan file is self-contained
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            help="text, markdown (as in a pull request) or json (the plan file's own content).",
        ),
    ] = Format.TEXT,
) -> None:
    """Re-render a saved plan, like `terraform show`: no API is contacted and nothing is
    checked against the current state (`apply PLANFILE` does that)."""
    import sys

    from reconciler.cli import term
    from reconciler.plan import planfile, render

    plan, _state = planfile.load(plan_path)
    text = render.render(plan, fmt.value, color=term.use_color(sys.stdout))
    typer.echo(text, nl=not text.endswith("\n"))
