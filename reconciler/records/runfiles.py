"""Where runs live under a config directory: runs/YYYY/MM/<run id>.json (with its Markdown
twin, and a journal while it is incomplete) and runs/INDEX.md; what a run id looks like,
and the trigger every run records (scheduled | manual).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from reconciler.core.errors import ReconcileError

TRIGGERS = ("scheduled", "manual")
RUNS_DIR = "runs"
INDEX_NAME = "INDEX.md"
RUN_ID = re.compile(r"^(\d{4})(\d{2})\d{2}T\d{6}Z-(?:scheduled|manual)(?:-\d+)?$")


def detect_trigger(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """`--trigger` wins; else the GitHub Actions schedule event means scheduled; else manual."""
    if explicit is not None:
        if explicit not in TRIGGERS:
            raise ReconcileError(
                f"--trigger must be one of {', '.join(TRIGGERS)}, got {explicit!r}"
            )
        return explicit
    env = os.environ if environ is None else environ
    return "scheduled" if env.get("GITHUB_EVENT_NAME") == "schedule" else "manual"


def runs_dir(config_dir: Path) -> Path:
    return Path(config_dir) / RUNS_DIR


def run_path(config_dir: Path, run_id: str) -> Path:
    match = RUN_ID.match(run_id)
    if not match:
        raise ReconcileError(f"not a run id: {run_id!r} (expected e.g. 20261124T101500Z-manual)")
    return runs_dir(config_dir) / match[1] / match[2] / f"{run_id}.json"


def run_files(config_dir: Path) -> list[Path]:
    """Every run's JSON file, in no particular order."""
    return list(runs_dir(config_dir).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.json"))
