"""What a command shows on stderr while the engine works: on a terminal only, a bar for
long reads (a 100,000-customer file) and a spinner while the APIs are read; everywhere,
the engine's notices and (-v) the requests it sent, once it ends. stdout stays the result."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli import term

if TYPE_CHECKING:
    from reconciler.engine.manager import SyncEngine

Update = Callable[[str, int, int], None]
"""(what is being done, done so far, total)"""


@contextmanager
def on_tty() -> Iterator[Update | None]:
    """An update callback drawing a transient bar on a tty stderr; None elsewhere (CI logs).

    The bar appears on the first update, and readers only report after their first
    thousand entries: small configurations never flash a bar.
    """
    if not sys.stderr.isatty():
        yield None
        return
    bar: Any = None
    tasks: dict[str, Any] = {}

    def update(what: str, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=term.stderr_console(),
                transient=True,
            )
            bar.start()
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


def is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def busy(message: str) -> contextlib.AbstractContextManager[object]:
    """A spinner on a terminal while ConnectWise and ZeroTek are read (thousands of
    requests at scale); nothing in logs and pipes."""
    if not is_tty(sys.stderr):
        return contextlib.nullcontext()
    return term.stderr_console().status(message)


def notice(line: str) -> None:
    """A line the engine says while it works (the `Ui.notice` of plan and apply)."""
    typer.echo(line, err=True)


@contextmanager
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
