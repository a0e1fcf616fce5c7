"""The setup commands, in the order a new user meets them: `init` (scaffold a config
repository), `validate` (the mappings, offline), `status` (credentials live, mappings,
the enabled flag), `activate` / `deactivate`, and `schema` (the JSON Schemas).

Parsing and printing only; scaffold, pin, upgrade, loader and the engine's status check do
the work, imported inside each command so `reconcile --help` stays fast.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.application import ConfigDirOption, app, command_for, config_dir_of, lines_of
from reconciler.config.resources import SCHEMA_NAMES
from reconciler.core.errors import ConfigError, ReconcileError

if TYPE_CHECKING:
    from reconciler.config.pin import Pin


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
    from reconciler.config import problem_output
    from reconciler.secure.untrusted import json_dumps, workflow_command

    root = config_dir_of(ctx, config_dir)
    try:
        with progress.on_tty() as update:
            loaded = config.load_config(root, update)
        problems = []
    except ConfigError as exc:
        problems = exc.problems
    if format is ValidateFormat.JSON:
        typer.echo(json_dumps(problem_output.problems_json(problems), indent=2))
    elif format is ValidateFormat.GITHUB:
        for problem in problems:
            # the annotations are meant: they pass the workflow-command guard
            where = problem_output.annotation_file(root, problem)
            annotation = problem_output.github_annotation(problem, where)
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
