"""Issue 25 / DESIGN 13.5: when the disk refuses the run log, no new ConnectWise write
starts, every committed write is told (stderr, one line each), and the command ends with one
line naming the path, exit 1. No record ever calls a written change "not applied".

The fault matrix: {ENOSPC, EIO, short write, read-only} x {lock, journal, record, INDEX, ledger}
x {before the first write, mid-apply, after the last write}, each a real `reconcile apply`
(in-process, the CLI's own error handling) against the sandbox on loopback, with
`max_concurrency: 1` so "no write after the failure" is exact. The ownership ledger
(state/managed.json) is written after the last write: its failure leaves the run record
whole, which holds the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import set_setting
from disk_faults import COMPONENTS, KINDS, DiskFault
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.records import activity, runlog
from reconciler.records.runview import render_run, render_run_text
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]
ALL_WRITES = 11  # the example world's apply (test_e2e_sync)
PHASES = {"before": 0, "mid": 4, "after": ALL_WRITES}


def _apply(config_dir: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(
        app, ["--config-dir", str(config_dir), "apply", "--yes", "--no-email", *AS_OF]
    )
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stderr.splitlines()


def _records(config_dir: Path) -> list[runlog.RunRecord]:
    found = []
    for path in sorted((config_dir / "runs").glob("*/*/*.json")):
        try:
            json.loads(path.read_bytes())
        except ValueError:
            continue  # torn by the fault: "unreadable", not a lie
        found.append(activity.load_run(config_dir, path.stem))
    return found


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_run_log_failure_stops_writes_and_tells_the_truth(
    sandbox: Sandbox,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    component: str,
    phase: str,
) -> None:
    set_setting(config_dir, "max_concurrency", "1")
    at = PHASES[phase]
    fault = DiskFault(monkeypatch, component, kind, armed=lambda: sandbox.stats.writes >= at)
    writes_at_failure: list[int] = []
    fault.on_fire = lambda: writes_at_failure.append(sandbox.stats.writes)
    code, stderr = _apply(config_dir)
    monkeypatch.undo()  # the real disk again, to read what was left

    writes = sandbox.stats.writes
    if not fault.fired:  # this component is not written at that phase: an ordinary run
        assert code == 0, stderr
        assert writes == ALL_WRITES
        return
    # No ConnectWise write started after the run log failed.
    assert writes == writes_at_failure[0], (writes, writes_at_failure)
    assert code == 1, stderr
    named = [line for line in stderr if line.startswith("error: ") and str(config_dir) in line]
    assert named, stderr  # one line naming the path
    assert "Traceback" not in "\n".join(stderr)
    # What was written is told truthfully: every committed write on stderr, one line each,
    # or (the run log itself intact: a ledger failure) in a readable record...
    told = [line for line in stderr if line.startswith("committed: ")]
    records = _records(config_dir)
    recorded = [sum(ch.ok is True for c in r.customers for ch in c.changes) for r in records]
    assert len(told) == writes or writes in recorded, (stderr, recorded)
    # ...and no record on disk says a written change was "not applied".
    for record, done in zip(records, recorded, strict=True):
        shown = render_run_text(record) + render_run(record)
        assert done <= writes
        if done < writes:
            assert "not applied" not in shown, shown


def test_short_journal_write_is_detected(
    sandbox: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.write's return value is checked: half a journal line is a failure, not a record."""
    set_setting(config_dir, "max_concurrency", "1")
    DiskFault(monkeypatch, "journal", "short", armed=lambda: True)
    code, stderr = _apply(config_dir)
    assert code == 1 and "short write" in stderr[-1], stderr
    assert sandbox.stats.writes == 1
    told = [s for s in stderr if s.startswith("committed: ")]
    assert len(told) == 1 and told[0].count(" → ") == 1
