"""A failed apply, shown: whether runs/ recorded it and, under `--format json`, the JSON
document all the same (naming the failed run's record, if any), with the exit code the
error or signal gives. The error itself is re-raised for the application to print."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.json_output import apply_json
from reconciler.core.errors import ConfigError, ReconcileError
from reconciler.core.files import read_json
from reconciler.records.record import RunRecord
from reconciler.secure.untrusted import json_dumps

if TYPE_CHECKING:
    from reconciler.engine.manager import SyncEngine

__all__ = ["NOT_RECORDED", "apply_failure_shown"]


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
