"""The runs under runs/ as they read: listed newest first (from runs/index/ summaries where
they are current), one loaded by id or prefix (its journal replayed when it is
incomplete), and runs/INDEX.md, the Activity page, rebuilt from the run files (under the
config directory's lock, so it can never disagree with them: twins and summaries a killed
run left behind are repaired there).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

from reconciler.core.errors import ReconcileError
from reconciler.core.files import atomic_write, content_digest, read_json
from reconciler.records import runindex
from reconciler.records.journal import journal_path, replay_journal
from reconciler.records.record import RunRecord
from reconciler.records.runfiles import INDEX_NAME, RUN_ID, run_files, run_path, runs_dir
from reconciler.records.runindex import RunSummary
from reconciler.records.runview import render_index, render_run

_STALE_TEMP_SECONDS = 300


def _sweep_temps(runs: Path, now: float) -> None:
    """Temp files left by a killed writer would otherwise get committed with runs/."""
    for tmp in runs.rglob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TEMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass


def _read_record(path: Path) -> RunRecord:
    """Raises OSError/ValueError/KeyError/TypeError/AttributeError on an unreadable one."""
    record = RunRecord.from_json(read_json(path))
    if record.outcome == "incomplete":
        record = replay_journal(record, path)
    return record


def _summary(path: Path, *, repair: bool = False) -> RunSummary:
    """From runs/index/ when its summary matches the record and no journal is pending
    (a killed run's); else from the record itself, and with `repair` (under the lock, so
    no process is writing that run) its twin and summary are rewritten from it: a run
    killed mid-apply (a large record is journal-only) or between `finish` and
    `set_emails` left them behind its record."""
    runs = path.parents[2]
    if not journal_path(path).exists():
        stored = runindex.read(runs, path)
        if stored is not None:
            return stored
    # read_json refuses nesting too deep to parse (ValueError); RecursionError stays listed
    # for a record that parses but is too deep for what reads it: "unreadable", never fatal.
    unreadable = (
        OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError
    )  # fmt: skip
    try:
        record = _read_record(path)
        summary = runindex.summary_of(record, path)
    except unreadable:
        # Hand-edited or foreign files still show up, flagged, rather than vanishing.
        return RunSummary(path.stem, "?", "?", None, "unreadable", "?", 0, 0, 0, "0", 0, path)
    if repair:
        # Best effort: a hand-edited record the twin cannot render is still listed.
        with contextlib.suppress(*unreadable):
            _repair(record, path, summary)
    return summary


def _repair(record: RunRecord, path: Path, summary: RunSummary) -> None:
    """The twin (and, once no journal is pending, the summary) of `record` as read."""
    twin = path.with_suffix(".md")
    text = render_run(record)
    try:
        current = twin.read_text(encoding="utf-8")
    except (OSError, ValueError):
        current = None
    if current != text:
        atomic_write(twin, text)
    if record.outcome != "incomplete":  # killed between finishing and removing it
        journal_path(path).unlink(missing_ok=True)
    if not journal_path(path).exists():
        runindex.write(path.parents[2], summary, content_digest(path))


def list_runs(
    config_dir: Path, limit: int | None = None, *, repair: bool = False
) -> list[RunSummary]:
    """Newest first (by start time, then id). Only the runs listed are read (`repair`:
    see `_summary`)."""
    paths = sorted(run_files(config_dir), key=lambda p: (p.stem[:16], p.stem), reverse=True)
    return [_summary(p, repair=repair) for p in (paths if limit is None else paths[:limit])]


def load_run(config_dir: Path, run_id: str) -> RunRecord:
    """One run by id, or by a prefix that names exactly one run: reads that run alone."""
    path = run_path(config_dir, run_id) if RUN_ID.match(run_id) else None
    if path is None or not path.is_file():
        files = {p.stem: p for p in run_files(config_dir)}
        matches = sorted(stem for stem in files if stem.startswith(run_id))
        if len(matches) > 1:
            raise ReconcileError(f"run id {run_id!r} is ambiguous: {', '.join(matches[:5])}")
        if not matches:
            raise ReconcileError(f"no run {run_id!r} under {runs_dir(config_dir)}")
        path = files[matches[0]]
    try:
        return _read_record(path)
    except (OSError, ValueError) as exc:
        raise ReconcileError(f"{path}: cannot read run: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReconcileError(f"{path}: not a run record ({type(exc).__name__}: {exc})") from None


def rebuild_index(config_dir: Path) -> Path:
    runs = runs_dir(config_dir)
    _sweep_temps(runs, dt.datetime.now().timestamp())
    path = runs / INDEX_NAME
    # Called under the lock only: no other process is writing a run, so the twins and
    # summaries left behind by a killed one can be brought up to date.
    atomic_write(path, render_index(list_runs(config_dir, repair=True)))
    return path
