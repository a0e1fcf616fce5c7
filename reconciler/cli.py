"""`reconcile`: the command line. Parses options, calls the library, renders. No logic here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from reconciler import __version__
from reconciler.errors import ConfigError, ReconcileError



class _Group(TyperGroup):
    """Turns library errors into clean stderr lines + exit 1, for the console script and
    for CliRunner alike (so tests see exactly what users see)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(1) from None
        except ReconcileError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    name="reconcile",
    help=(
        "Reconcile ZeroTek Okta licence usage into ConnectWise PSA agreement additions.\n\n"
        "Mappings and settings are YAML under mappings/ in the config directory; `plan` shows "
        "what would change, `apply` makes ConnectWise match. Try `reconcile demo` first."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ConfigDirOption = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help="Config directory holding mappings/ (and runs/). "
        "Default: $RECONCILE_CONFIG_DIR, else the current directory.",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config_dir: ConfigDirOption = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ctx.obj = {"config_dir": config_dir}


def config_dir_of(ctx: typer.Context, local: Path | None) -> Path:
    """`--config-dir` after the subcommand wins over one before it, then the environment."""
    if local is not None:
        return local
    root = (ctx.obj or {}).get("config_dir") if ctx.obj is not None else None
    if root is None and ctx.parent is not None and ctx.parent.obj:
        root = ctx.parent.obj.get("config_dir")
    if root is not None:
        return Path(root)
    env = os.environ.get("RECONCILE_CONFIG_DIR")
    return Path(env) if env else Path.cwd()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def main() -> None:
    """Console entry point (`reconcile`, `python -m reconciler`)."""
    app(prog_name="reconcile")
