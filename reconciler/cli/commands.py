"""`reconcile`: the command line. Parses options, calls the library, renders. No logic here.

The application itself (error handling, root options, environment variables) is built in
cli.application; the commands below and those of cli.insight register on it, and `main` runs it.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# cli.insight registers `discover` and `report` on the app when imported.
from reconciler.cli import insight  # noqa: F401
from reconciler.cli.application import (
    WORKFLOW_ORDER,
    ConfigDirOption,
    app,
    command_for,
    config_dir_of,
    lines_of,
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
)
from reconciler.config.resources import SCHEMA_NAMES
from reconciler.core.errors import ConfigError, ReconcileError
from reconciler.core.vocabulary import PeriodKind
from reconciler.secure.scrub import guard_process_output
from reconciler.secure.untrusted import plain

if TYPE_CHECKING:
    from reconciler.config.pin import Pin

__all__ = ["WORKFLOW_ORDER", "app", "main"]


class StatusFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
def status(
    ctx: typer.Context,
    fmt: Annotated[
        StatusFormat,
        typer.Option("--format", help="text, or json (schemas/status.schema.json)."),
    ] = StatusFormat.TEXT,
    config_dir: ConfigDirOption = None,
) -> None:
    """Setup state: credentials (live, read-only check of ConnectWise and ZeroTek), mappings
    valid and non-empty, enabled flag -> active / inactive and why. Exit 1 if a check fails."""
    import asyncio
    import json

    from reconciler.engine.status import check_status, render_status, status_json

    root = config_dir_of(ctx, config_dir)
    report = asyncio.run(check_status(root))
    if fmt is StatusFormat.JSON:
        typer.echo(json.dumps(status_json(report), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_status(report))
        if report.ok:
            typer.echo(
                f"next: `{command_for(root, 'plan')}` shows what a sync would change", err=True
            )
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point (`reconcile`, `python -m reconciler`)."""
    guard_process_output()  # also what the interpreter prints (a traceback) is guarded
    app(prog_name="reconcile")


# --- configuration: validate, init, activate, deactivate -------------------------------------


class ValidateFormat(StrEnum):
    TEXT = "text"
    GITHUB = "github"
    JSON = "json"


@app.command()
def validate(
    ctx: typer.Context,
    format: Annotated[
        ValidateFormat,
        typer.Option(
            "--format",
            help="text: `file:line:col: message` on stderr; github: ::error annotations; "
            "json: {valid, errors[]} on stdout.",
        ),
    ] = ValidateFormat.TEXT,
    config_dir: ConfigDirOption = None,
) -> None:
    """Check mappings/ against the schemas and each other (offline). Exit 0 valid, 1 not."""
    from reconciler.cli import progress
    from reconciler.config import loader as config
    from reconciler.config import schema
    from reconciler.secure.untrusted import json_dumps, workflow_command

    root = config_dir_of(ctx, config_dir)
    try:
        with progress.on_tty() as update:
            loaded = config.load_config(root, update)
        problems = []
    except ConfigError as exc:
        problems = exc.problems
    if format is ValidateFormat.JSON:
        typer.echo(json_dumps(schema.problems_json(problems), indent=2))
    elif format is ValidateFormat.GITHUB:
        for problem in problems:
            # the annotations are meant: they pass the workflow-command guard
            annotation = schema.github_annotation(problem, schema.annotation_file(root, problem))
            workflow_command(annotation)
    else:
        for problem in problems:
            typer.echo(lines_of(problem), err=True)
    if problems:
        if format is not ValidateFormat.JSON:
            typer.echo(
                f"error: mappings invalid: {len(problems)} problem(s); fix them, then run "
                f"`{command_for(root, 'validate')}` again",
                err=True,
            )
        raise typer.Exit(1)
    if format is not ValidateFormat.JSON:
        typer.echo(f"mappings valid: {len(loaded.skus)} SKUs, {len(loaded.customers)} customers")
        typer.echo(
            f"next: `{command_for(root, 'status')}` checks the credentials and whether the "
            "integration is active",
            err=True,
        )


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR",
            help="Where to create mappings/ (default: the config directory).",
            show_default=False,
        ),
    ] = None,
    pin_source: Annotated[
        str | None,
        typer.Option(
            "--pin",
            metavar="SOURCE",
            help="The exact reconciler the workflows install: git+https://HOST/OWNER/REPO@"
            "<40-hex commit>, or https://.../FILE.whl#sha256=<hash>. Default: the source this "
            "copy was installed from, when pip recorded one.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List the files it would write; write nothing."),
    ] = False,
    upgrade: Annotated[
        bool,
        typer.Option(
            "--upgrade",
            help="In an existing config repository: rewrite the generated workflows and "
            "requirements/locked.txt to this version (keeping their pin unless --pin), "
            "printing the diff. Mappings, runs/ and state/ are not touched.",
        ),
    ] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """Scaffold a config repository: commented settings, SKU and customer mappings that
    validate as they are (edit them for your MSP), their schemas (editors validate as you
    type), the GitHub workflows installing a pinned reconciler, dependabot, .gitignore."""
    from reconciler.config import pin, scaffold

    target = directory if directory is not None else config_dir_of(ctx, config_dir)
    if upgrade:
        _upgrade(target, pin.parse_pin(pin_source) if pin_source is not None else None)
        return
    source = pin.parse_pin(pin_source) if pin_source is not None else pin.installed_pin()
    files = scaffold.init(target, source, dry_run=dry_run)
    _list_files(target, files, dry_run, pin_source)
    if not dry_run:
        _after_init(target, source)


def _after_init(target: Path, source: Pin | None) -> None:
    """Where the workflows install from, and the next step."""
    from reconciler.config import pin

    if source is not None:
        typer.echo(f"workflows install the reconciler from {source.url}")
    else:
        typer.echo(
            "warning: no exact reconciler source to pin (this copy was not installed from a git "
            "commit or a hashed wheel): the workflows' install step fails until you replace its "
            f"marked line, or re-run init with --pin {pin.PIN_HELP}",
            err=True,
        )
    typer.echo(
        "next: edit mappings/ (each key is explained in its comments), then run "
        f"`{command_for(target, 'validate')}`"
    )


def _list_files(target: Path, files: list[str], dry_run: bool, pin_source: str | None) -> None:
    """One file per line, under the directory; a dry run says how to write them."""
    typer.echo(f"{'would create' if dry_run else 'created'} in {target}:")
    for written in files:
        typer.echo(f"  {written}")
    if dry_run:
        pinned = ["--pin", shlex.quote(pin_source)] if pin_source is not None else []
        again = " ".join(["reconcile", "init", shlex.quote(str(target)), *pinned])
        typer.echo(f"nothing written (dry run); create them with `{again}`")


def _upgrade(target: Path, source: Pin | None) -> None:
    from reconciler.config.upgrade import upgrade

    chosen, results = upgrade(target, source)
    for item in results:
        typer.echo(item.diff(), nl=False)
    changed = [item.target for item in results if item.changed]
    typer.echo(
        f"upgraded {', '.join(changed)}" if changed else "already up to date: nothing changed",
        err=True,
    )
    typer.echo(f"workflows install the reconciler from {chosen.url}", err=True)
    if changed:
        typer.echo("next: read the diff above, then commit it in a pull request", err=True)


@app.command("schema")
def schema_command(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            # the names the command accepts, from the one list it checks against
            help=f"One of: {', '.join(SCHEMA_NAMES)}.",
        ),
    ],
    config_dir: ConfigDirOption = None,  # accepted like everywhere; the schemas are built in
) -> None:
    """Print a JSON Schema (draft 2020-12), e.g. for an editor or another tool: settings,
    skus and customers describe the mapping files, plan a saved plan, run the records under
    runs/, managed the ledger state/managed.json, the others the JSON output of the command
    of that name."""
    from reconciler.config.resources import schema_path

    if name not in SCHEMA_NAMES:
        raise ReconcileError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMA_NAMES)}")
    typer.echo(schema_path(name).read_text(encoding="utf-8"), nl=False)


def _set_enabled(ctx: typer.Context, config_dir: Path | None, enabled: bool) -> None:
    from reconciler.config import scaffold

    root = config_dir_of(ctx, config_dir)
    changed = scaffold.set_enabled(root, enabled)
    if enabled:
        typer.echo("integration activated" if changed else "integration already active")
    else:
        typer.echo("integration deactivated" if changed else "integration already inactive")
        typer.echo(f"`{command_for(root, 'activate')}` turns it back on", err=True)


@app.command()
def activate(ctx: typer.Context, config_dir: ConfigDirOption = None) -> None:
    """Set `enabled: true` in mappings/settings.yaml (comments and layout are kept)."""
    _set_enabled(ctx, config_dir, True)


@app.command()
def deactivate(ctx: typer.Context, config_dir: ConfigDirOption = None) -> None:
    """Set `enabled: false`: `apply` and the scheduled sync then change nothing."""
    _set_enabled(ctx, config_dir, False)


# --- plan / apply (bodies in cli.planning, cli.applying) -------------------------------------


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
    from reconciler.cli.options import parse_as_of
    from reconciler.cli.planning import PlanOptions, run_plan
    from reconciler.engine.manager import PlanRequest, resolve_max_duration

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
    from reconciler.cli.options import parse_as_of
    from reconciler.engine.manager import ApplyRequest, resolve_max_duration

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


# --- the sync log and the unmapped-SKU check -------------------------------------------------


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


class ActivityFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
def activity(
    ctx: typer.Context,
    run_id: Annotated[
        str | None,
        typer.Argument(
            metavar="RUN_ID",
            help="Show this run in detail (an id from the list, or a unique prefix of one).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="List at most this many runs, newest first.")
    ] = 20,
    fmt: Annotated[
        ActivityFormat, typer.Option("--format", help="text, or json (the run records).")
    ] = ActivityFormat.TEXT,
    rebuild_index: Annotated[
        bool,
        typer.Option(
            "--rebuild-index",
            help="Regenerate runs/INDEX.md from the run files (under the config directory's "
            "lock) and exit; the sync workflow does this instead of merging INDEX.md.",
        ),
    ] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """The sync log: past runs newest first (outcome, changes, revenue delta, errors), or
    one run's details. Reads runs/ in the config directory; runs/INDEX.md is the same list."""
    from reconciler.engine import history
    from reconciler.records import runview
    from reconciler.secure.untrusted import json_dumps

    root = config_dir_of(ctx, config_dir)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise ReconcileError(f"config directory {root} {what} (pass --config-dir)")
    if not (root / "mappings").is_dir() and not history.runs_dir(root).is_dir():
        raise ReconcileError(
            f"{root} is not a config directory: it has neither mappings/ nor runs/ "
            "(pass --config-dir, or run `reconcile init`)"
        )
    if rebuild_index:
        typer.echo(f"rebuilt {history.rebuild_index(root, command=lock_command())}")
        return
    if run_id is not None:
        run = history.load_run(root, run_id)
        as_json = fmt is ActivityFormat.JSON
        typer.echo(json_dumps(run.to_json(), indent=2) if as_json else runview.render_run_text(run))
        return
    runs = history.list_runs(root, limit)
    if fmt is ActivityFormat.JSON:
        typer.echo(json_dumps({"runs": [r.as_json() for r in runs]}, indent=2))
    elif not runs:
        typer.echo(f"No runs yet under {history.runs_dir(root)}")
    else:
        typer.echo(runview.render_runs_text(runs))


@app.command("check-unmapped")
def check_unmapped(
    ctx: typer.Context,
    no_email: Annotated[
        bool, typer.Option("--no-email", help="List only; send no e-mail.")
    ] = False,
    as_of: AsOfOption = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="text, or json: the lists valued, alone on stdout (schemas/unmapped.schema.json).",
        ),
    ] = OutputFormat.TEXT,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            metavar="FILE",
            help="Also append the list as Markdown to FILE (the workflow passes "
            "$GITHUB_STEP_SUMMARY).",
            show_default=False,
        ),
    ] = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """Daily: list mapped customers whose current-period usage includes a ZeroTek SKU with
    no mapping (customer, SKU, users) and e-mail administrators + billing while any remain.
    Silent when none. Exit 0 either way; 1 on errors (including a failed e-mail)."""
    from reconciler.cli.options import parse_as_of
    from reconciler.cli.progress import requests_shown
    from reconciler.config.loader import load_config
    from reconciler.engine.manager import SyncEngine
    from reconciler.plan import render
    from reconciler.secure.scrub import scrub

    engine = SyncEngine(load_config(config_dir_of(ctx, config_dir)))
    with requests_shown(engine, verbose_of(ctx)):
        found = engine.check_unmapped(parse_as_of(as_of), send_email=not no_email)
    if summary is not None:
        with summary.open("a", encoding="utf-8") as fh:
            fh.write(scrub(render.unmapped_markdown(found.rows, found.period)))
    if fmt is OutputFormat.JSON:
        from reconciler.cli.json_output import unmapped_json
        from reconciler.secure.untrusted import json_dumps

        currency = engine.config.settings.currency
        doc = unmapped_json(found.period, currency, found.valued_skus, found.customers,
                            found.price_note, found.email)  # fmt: skip
        typer.echo(json_dumps(doc, indent=2))
    elif not found.any:
        typer.echo("No unmapped SKUs in use.")
    else:
        _show_unmapped(engine.config.settings.currency, found)
    if found.email is not None:
        typer.echo(f"e-mail {found.email.kind}: {plain(found.email.detail)}", err=True)
        if found.email_failed:
            raise typer.Exit(1)


def _show_unmapped(currency: str, found: Any) -> None:
    from reconciler.core.money import display
    from reconciler.plan import render

    if found.rows:
        typer.echo(f"Customers using unmapped ZeroTek SKUs ({found.period}):")
        typer.echo(render.unmapped_text(found.rows))
    if found.customers:
        if found.rows:
            typer.echo("")
        typer.echo(f"ZeroTek customers with usage but no mapping ({found.period}):")
        table = [
            (r.customer_name, r.customer_id, r.sku, str(r.zerotek_users),
             "not priced" if r.amount is None else display(r.amount, currency=currency))
            for r in found.customers
        ]  # fmt: skip
        header = ("Customer", "Customer id", "SKU", "Users", "Per month")
        typer.echo("\n".join(render.text_table([header, *table])))


# --- CI helpers used by the workflows (hidden from the main help) ----------------------------


@app.command("pr-comment", hidden=True)
def pr_comment(
    file: Annotated[
        Path, typer.Option("--file", help="The plan's Markdown (`plan --format markdown`).")
    ],
    repo: Annotated[str, typer.Option("--repo", help="OWNER/REPO (github.repository).")],
    pr: Annotated[int, typer.Option("--pr", help="The pull-request number.")],
    head_sha: Annotated[
        str | None,
        typer.Option(
            "--head-sha", help="The commit planned (shown in the comment).", show_default=False
        ),
    ] = None,
    author: Annotated[
        str,
        typer.Option(
            "--author", help="The login the token writes as: only its comments are edited."
        ),
    ] = "github-actions[bot]",
) -> None:
    """CI helper: post FILE as the PR's plan comment, updating the previous one in place
    (found by its hidden marker and its author: this token's identity). Token from
    GITHUB_TOKEN, API root from GITHUB_API_URL."""
    from reconciler.notify.github import post_plan_comment

    result = post_plan_comment(file, repo, pr, head_sha=head_sha, author=author)
    typer.echo(f"plan comment {result.action}: {result.url or result.comment_id}")


@app.command("is-enabled", hidden=True)
def is_enabled(ctx: typer.Context, config_dir: ConfigDirOption = None) -> None:
    """CI helper: print `true` or `false` (settings.enabled); exit 1 only if the config is
    invalid. The sync workflow uses it to end green, doing nothing, while deactivated."""
    from reconciler.config.loader import load_settings_only

    # settings.yaml alone: a deactivated integration may have mappings mid-edit.
    settings = load_settings_only(config_dir_of(ctx, config_dir))
    typer.echo("true" if settings.enabled else "false")


@app.command("sandbox")
def sandbox_command(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1; 0 = any free port.")
    ] = 0,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Delay added to every request (ms).")
    ] = 0,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate",
            min=0,
            max=1,
            help="Share of requests that fail: 1/3 HTTP 500, 1/3 HTTP 429 (Retry-After), "
            "1/3 dropped connections (half of those after committing a write).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault generator.")] = 0,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit",
            min=1,
            metavar="PER_MINUTE",
            help="Requests a minute each API answers (a hidden token bucket, one second's "
            "worth of burst); beyond it, 429 with Retry-After. Default: unlimited.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not log requests to stderr.")] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """Run the loopback ConnectWise + ZeroTek simulators (the example data) in the foreground
    and print the environment that points the CLI at them. Ctrl-C stops them."""
    from reconciler.cli.sandbox_command import serve_until_stopped
    from reconciler.sandbox import Sandbox
    from reconciler.secure.scrub import declare_public

    # Its export lines are public demo values: printed as they are, even when this shell
    # already holds them as credentials (the scrubber would otherwise redact them).
    sb = Sandbox
    declare_public(sb.company_id, sb.public_key, sb.private_key, sb.client_id, sb.zerotek_token)
    root = config_dir_of(ctx, config_dir)  # named in the hint on how to use the sandbox
    serve_until_stopped(port=port, latency_ms=latency_ms, fault_rate=fault_rate, seed=seed,
                        quiet=quiet, config_dir=root, rate_limit=rate_limit)  # fmt: skip


@app.command()
def demo(
    ctx: typer.Context,
    keep_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "--config-dir",
            help="Where to put the demo's config and run log (must not hold mappings/ yet). "
            "Default: a new temporary directory, kept afterwards. $RECONCILE_CONFIG_DIR is "
            "not used: the demo never writes into your real config.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Try it with no accounts: start the embedded sandbox, plan, apply, plan again, show the
    sync log."""
    from reconciler.cli.demo import run_demo

    if keep_dir is None and ctx.parent is not None and ctx.parent.obj:
        keep_dir = ctx.parent.obj.get("config_dir")  # `reconcile --config-dir D demo`
    raise typer.Exit(run_demo(keep_dir))
