"""The `reconcile` Typer application, without its commands: how errors become exit codes and
stderr lines, the root options, every option's environment variable, the help's command
order, and what several command modules share (`--config-dir`, `--out` checking, the lock's
name for this process).

The command modules (cli.setup_commands, sync_commands, insight_commands, ci_commands,
demo_commands) import this module and register on `app`; cli.commands imports them, once,
so the graph runs one way (tests/e2e/test_import_graph.py).
Kept light: `reconcile --help` imports it (benchmarks/import_time.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from reconciler import __version__
from reconciler.core.errors import ConfigError, ReconcileError, os_error_line
from reconciler.secure.scrub import guarded_output, shorten
from reconciler.secure.untrusted import plain


def lines_of(message: object) -> str:
    """An error message for the terminal: its own line breaks kept, data made visible."""
    return "\n".join(plain(line) for line in str(message).splitlines())


_NOT_ONE_OF = re.compile(r"(?:Value error, )?('.*') is not one of (.*?)\.?$")


def _usage_exit_1(exc: Exception) -> None:
    """Usage errors exit 1, not click's 2: for `plan --detailed-exitcode` 2 means "changes
    present", and a CI script must never read a mistyped option as that. A wrong choice
    lists the choices plainly (typer's "Value error, 'x' is not one of 'a', 'b'." does not)."""
    if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "show"):
        exc.exit_code = 1  # type: ignore[attr-defined]
    message = getattr(exc, "message", None)
    match = _NOT_ONE_OF.fullmatch(message) if isinstance(message, str) else None
    if match:
        choices = ", ".join(c.strip().strip("'") for c in match.group(2).split(","))
        exc.message = f"{match.group(1)} is not a choice; use one of: {choices}"  # type: ignore[attr-defined]


def check_out_path(value: Path | None) -> Path | None:
    """`--out FILE` must name a file that can be created: fail before any work is done."""
    if value is None:
        return None
    text = str(value)
    if value.is_dir() or text.endswith(("/", os.sep)) or value.name in {"", ".", ".."}:
        raise ReconcileError(f"--out {text}: is a directory; give a file name such as plan.json")
    for ancestor in [value.parent, *value.parent.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ReconcileError(f"--out {text}: {ancestor} is a file, not a directory")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise ReconcileError(
                    f"--out {text}: cannot write in {ancestor} (permission denied)"
                )
            break
    return value


# Commands in the order of the workflow (help lists them so); any command not named here
# follows, alphabetically.
WORKFLOW_ORDER = (
    "init",
    "validate",
    "status",
    "activate",
    "deactivate",
    "plan",
    "apply",
    "show",
    "activity",
    "check-unmapped",
    "discover",
    "report",
    "schema",
    "sandbox",
    "demo",
)
# Options that mean the same in every command read one variable; all others read
# RECONCILE_<COMMAND>_<OPTION> (a `--format` differs between commands).
_GLOBAL_ENV = {
    "color": "RECONCILE_COLOR",
    "verbose": "RECONCILE_VERBOSE",
    "debug": "RECONCILE_DEBUG",
}
_NO_ENV = {"help", "version", "install_completion", "show_completion", "config_dir"}


def _env_name(command: str | None, param: str) -> str:
    if param in _GLOBAL_ENV:
        return _GLOBAL_ENV[param]
    parts = ["RECONCILE", *([command] if command else []), param]
    return "_".join(parts).replace("-", "_").upper()


def _give_env_vars(command: Any, name: str | None) -> None:
    """Every option reads an environment variable, shown in its help line."""
    for param in command.params:
        is_option = getattr(param, "param_type_name", "") == "option"  # not an argument
        if not is_option or param.name in _NO_ENV or param.envvar:
            continue
        longest = max(param.opts, key=len).lstrip("-")  # --format, even if the name is fmt
        param.envvar = _env_name(name, longest)
        param.show_envvar = True


_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s")


def _summary(command: Any) -> str:
    """A command's first sentence, whole (click cuts it at 45 characters with "...")."""
    text = command.short_help or (command.help or "").strip()
    first = text.split("\n\n")[0].replace("\n", " ")
    end = _SENTENCE_END.search(first)
    return first if end is None else first[: end.start() + 1]


class _Group(TyperGroup):
    """Turns library errors into clean stderr lines + exit 1, for the console script and
    for CliRunner alike (so tests see exactly what users see); lists commands in workflow
    order with whole summaries; gives every option its environment variable."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(self.commands)
        known = [n for n in WORKFLOW_ORDER if n in names]
        return known + sorted(n for n in names if n not in known)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, _summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        from reconciler.cli.help import add_examples

        _give_env_vars(self, None)
        for name, command in self.commands.items():
            _give_env_vars(command, name)
        add_examples(self, self.commands)
        try:
            return super().make_context(*args, **kwargs)
        except Exception as exc:
            _usage_exit_1(exc)
            raise

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        # Every byte a command prints passes the credential scrubber and, under GitHub
        # Actions, the workflow-command guard (reconciler.secure.untrusted).
        with guarded_output():
            try:
                return super().invoke(ctx)
            except ConfigError as exc:
                # one error style everywhere (`error: ...`), each problem where it is
                for problem in exc.problems:
                    typer.echo(f"error: {lines_of(problem)}", err=True)
                raise typer.Exit(1) from None
            except ReconcileError as exc:
                for line in getattr(exc, "committed", ()):  # RunLogFailed: the truth first
                    typer.echo(line, err=True)
                typer.echo(f"error: {lines_of(exc)}", err=True)
                raise typer.Exit(exc.exit_code) from None
            except OSError as exc:  # a disk or permission error nothing above expected
                typer.echo(f"error: {plain(os_error_line(exc))}", err=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt as exc:
                typer.echo("Interrupted.", err=True)
                # 128 + the signal's number (interrupt.Interrupted): 143 for SIGTERM
                signum = getattr(exc, "signum", None)
                raise typer.Exit(128 + signum if isinstance(signum, int) else 130) from None
            except Exception as exc:
                _usage_exit_1(exc)
                raise


app = typer.Typer(
    cls=_Group,
    name="reconcile",
    help=(
        "Reconcile ZeroTek Okta licence usage into ConnectWise PSA agreement additions.\n\n"
        "Mappings and settings are YAML under mappings/ in the config directory; `plan` shows "
        "what would change, `apply` makes ConnectWise match. Try `reconcile demo` first."
    ),
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ConfigDirOption = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help="Config directory holding mappings/ (and runs/); default: the current "
        "directory.  [env var: RECONCILE_CONFIG_DIR]",
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
    color: Annotated[
        bool | None,
        typer.Option(
            "--color/--no-color",
            help="Colour output. Default: on a terminal, unless NO_COLOR is set.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Log what happens on stderr (retries, 429s); plan, apply and check-unmapped "
            "end with the requests they sent.",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Log every request too (method, path, status, time)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    from reconciler.cli import term

    if verbose or debug:
        import logging
        import sys

        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        # Only ours: httpx/httpcore debug lines would print request headers (credentials).
        for noisy in ("httpx", "httpcore", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    term.force_color(color)
    if color is not None:
        ctx.color = color  # click.echo then keeps (or strips) styles whatever the stream
    ctx.obj = {"config_dir": config_dir, "verbose": verbose or debug}


def verbose_of(ctx: typer.Context) -> bool:
    """`-v`/`--debug` before the command (or RECONCILE_VERBOSE / RECONCILE_DEBUG)."""
    for c in (ctx, ctx.parent):
        if c is not None and isinstance(c.obj, dict) and c.obj.get("verbose"):
            return True
    return False


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


def command_for(config_dir: Path, *args: str) -> str:
    """A `reconcile ...` command line to suggest, keeping the user's config directory when it
    is not the current one (a hint that drops it runs against the wrong directory)."""
    import shlex

    words = ["reconcile"]
    try:
        elsewhere = Path(config_dir).resolve() != Path.cwd().resolve()
    except OSError:
        elsewhere = True
    if elsewhere:
        words += ["--config-dir", shlex.quote(str(config_dir))]
    return " ".join([*words, *args])


def lock_command() -> str:
    """How the config-directory lock names this process: the command line, arguments only."""
    import sys

    return shorten(" ".join(["reconcile", *sys.argv[1:]]), 200)
