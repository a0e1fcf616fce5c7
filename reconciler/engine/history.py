"""The sync log as the commands show it: list and load runs, rebuild INDEX.md under the
config directory's lock. Kept apart from `manager` so `reconcile activity` loads the run
log and the lock, not the whole engine (47 ms instead of 230 ms of imports).
"""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.lock import config_lock
from reconciler.records import activity, runfiles
from reconciler.records.record import RunRecord
from reconciler.records.runindex import RunSummary

__all__ = ["list_runs", "load_run", "rebuild_index", "runs_dir"]


def list_runs(config_dir: Path, limit: int | None = None) -> list[RunSummary]:
    return activity.list_runs(config_dir, limit)


def load_run(config_dir: Path, run_id: str) -> RunRecord:
    return activity.load_run(config_dir, run_id)


def rebuild_index(config_dir: Path, *, command: str, lock_timeout: float = 120.0) -> Path:
    """INDEX.md regenerated from the run files, under the lock (an apply in progress on
    this config directory finishes its record first)."""
    with config_lock(config_dir, command, lock_timeout):
        return activity.rebuild_index(config_dir)


def runs_dir(config_dir: Path) -> Path:
    return runfiles.runs_dir(config_dir)
