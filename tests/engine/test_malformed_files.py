"""Issue 25 / DESIGN 13.5: malformed local files give one-line errors, never tracebacks; a
bad run file is "unreadable" and never blocks `plan --if-due` or `apply`; cached summaries
are keyed by content; mapping files must resolve inside the config directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from disk_faults import DiskFault
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.core.errors import ReconcileError
from reconciler.engine.lock import config_lock, lock_path
from reconciler.records import activity
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]
DEEP_JSON = "[" * 3000 + "]" * 3000  # 6 KB


def cli(config_dir: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def _plant_run(config_dir: Path, name: str, text: str) -> Path:
    path = config_dir / "runs" / "2026" / "10" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_deeply_nested_run_file_blocks_nothing(sandbox: Sandbox, config_dir: Path) -> None:
    _plant_run(config_dir, "20261015T060000Z-scheduled", DEEP_JSON)
    listed = cli(config_dir, "activity")
    assert listed.exit_code == 0 and "unreadable" in listed.stdout, listed.output
    assert cli(config_dir, "activity", "--rebuild-index").exit_code == 0
    shown = cli(config_dir, "activity", "20261015T060000Z-scheduled")
    assert shown.exit_code == 1 and "nested too deeply" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1
    due = cli(config_dir, "plan", "--if-due", "--as-of", "2026-11-15")
    assert due.exit_code == 0, due.output  # the scheduled sync still runs
    applied = cli(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert applied.exit_code == 0, applied.output
    assert sandbox.stats.writes == 11
    outcomes = {s.outcome for s in activity.list_runs(config_dir)}
    assert outcomes == {"unreadable", "success"}


def test_an_edit_that_keeps_the_size_is_noticed(sandbox: Sandbox, config_dir: Path) -> None:
    assert cli(config_dir, "apply", "--yes", "--no-email", *AS_OF).exit_code == 0
    (summary,) = activity.list_runs(config_dir)
    assert summary.outcome == "success"
    path = summary.path
    text = path.read_text()
    edited = text.replace('"outcome":"success"', '"outcome":"partial"')
    assert edited != text and len(edited) == len(text)
    path.write_text(edited)
    (again,) = activity.list_runs(config_dir)
    assert again.outcome == "partial"


def test_yaml_nested_400_deep_is_one_line_error(config_dir: Path) -> None:
    skus = config_dir / "mappings" / "skus.yaml"
    skus.write_text(skus.read_text() + "\n- sku: DEEP\n  product: " + "[" * 400 + "]" * 400 + "\n")
    result = cli(config_dir, "validate")
    assert result.exit_code == 1
    assert "nested deeper than 32 levels" in result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith("mappings/skus.yaml:") for line in lines[:-1]), lines
    assert lines[-1].startswith("error: mappings invalid")


def test_a_plan_file_nested_too_deep_is_one_line(sandbox: Sandbox, config_dir: Path) -> None:
    plan = config_dir / "plan.json"
    plan.write_text(DEEP_JSON)
    result = cli(config_dir, "apply", str(plan), "--no-email")
    assert result.exit_code == 1
    assert "not a plan file (nested too deeply" in result.stderr
    assert sandbox.stats.writes == 0


def test_a_mapping_symlinked_out_of_the_config_dir_is_refused_unread(
    config_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("SECRET-CONTENT: [1, 2\n")  # would be quoted by a syntax error
    skus = config_dir / "mappings" / "skus.yaml"
    skus.unlink()
    skus.symlink_to(outside)
    result = cli(config_dir, "validate")
    assert result.exit_code == 1
    assert "mappings/skus.yaml: resolves outside the config directory" in result.stderr
    assert "SECRET" not in result.output


def test_a_lock_holder_record_of_deep_json_is_not_a_crash(config_dir: Path) -> None:
    """A second writer reads the holder's record to name it: garbage there is "another
    process", not a RecursionError."""
    import fcntl

    path = lock_path(config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEEP_JSON)
    with path.open("r+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        refused = pytest.raises(ReconcileError, match="locked by another process")
        with refused, config_lock(config_dir, "test"):
            pass


def test_a_read_only_runs_dir_is_one_line_naming_it(sandbox: Sandbox, config_dir: Path) -> None:
    """Root ignores permission bits, so the read-only disk is the run log's own refusal
    (EROFS at open) from the fault injector; the CLI's OSError line is checked here."""
    with pytest.MonkeyPatch.context() as mp:
        DiskFault(mp, "record", "EROFS", armed=lambda: True)
        result = cli(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert "Read-only file system" in line and str(config_dir / "runs") in line
    assert sandbox.stats.writes == 0
