"""The CLI in-process through typer's CliRunner, failing the test on an uncaught exception.

CliRunner catches whatever a command raises, keeps it in `result.exception` and prints no
traceback, so `"Traceback" not in result.output` can never fail and a crash passes as
exit code 1. `checked` looks at the exception itself: only SystemExit (how click ends a
command with an exit code) may be there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from reconciler.cli import app


def checked(result: Result) -> Result:
    """`result`, or an AssertionError chained to the exception the command did not catch."""
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        raise AssertionError(
            f"uncaught {type(error).__name__}: {error}\n--- output:\n{result.output}"
        ) from error
    return result


def invoke(
    *args: str,
    env: dict[str, str | None] | None = None,
    input: str | None = None,
    width: int | None = None,
) -> Result:
    """`reconcile ARGS...` with `env` added to (None: removed from) the environment."""
    options: dict[str, Any] = {} if width is None else {"terminal_width": width}
    return checked(CliRunner().invoke(app, list(args), env=env, input=input, **options))


def run(
    config_dir: Path,
    *args: str,
    env: dict[str, str | None] | None = None,
    input: str | None = None,
) -> Result:
    """`reconcile --config-dir CONFIG_DIR ARGS...`."""
    return invoke("--config-dir", str(config_dir), *args, env=env, input=input)
