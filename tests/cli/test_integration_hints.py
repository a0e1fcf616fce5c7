"""Integration review of issues 24-31: the hints printed after a plan or an interrupted
apply must name a command that does what they say. Through the CLI against the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import set_setting
from typer.testing import CliRunner, Result

from reconciler.cli import app
from reconciler.records import activity
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]


def cli(config_dir: Path, *args: str) -> Result:
    result = CliRunner().invoke(app, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_an_unsafe_plan_does_not_say_apply_makes_its_changes(
    sandbox: Sandbox, config_dir: Path
) -> None:
    skus = config_dir / "mappings" / "skus.yaml"
    skus.write_text(skus.read_text().replace("- sku: OKTA-MFA", "- sku: OKTA-MFX"))  # a typo
    result = cli(config_dir, "plan", *AS_OF)
    assert result.exit_code == 0 and "UNSAFE PLAN" in result.stdout, result.output
    assert "makes these changes" not in result.stderr  # apply would refuse them (exit 3)
    assert "refuses this unsafe plan without --force" in result.stderr
    refused = cli(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert refused.exit_code == 3 and sandbox.stats.writes == 0
    assert "did you mean OKTA-MFA?. " not in refused.stderr  # one full stop, not "?."


def test_the_hint_after_an_interrupted_selective_apply_keeps_the_selection(
    sandbox: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_setting(config_dir, "max_concurrency", "1")
    sandbox.on_write = lambda count: time.sleep(1.5)  # the limit falls before the last write
    monkeypatch.setenv("RECONCILE_MAX_DURATION", "2")
    args = ["--customer", "zt-0003", *AS_OF]  # three additions for zt-0003 alone
    result = cli(config_dir, "apply", "--yes", "--no-email", *args)
    assert result.exit_code == 124, result.output
    assert "not started" in result.stderr, result.stderr
    (summary,) = activity.list_runs(config_dir)
    assert activity.load_run(config_dir, summary.run_id).interrupted_by == "time limit"
    # a bare `apply` would apply every customer: the hint re-plans what this run planned
    hint = f"run `reconcile --config-dir {config_dir} apply {' '.join(args)}` again"
    assert hint in result.stderr, result.stderr


def test_a_removed_customer_reads_cleanly_in_plan_activity_and_run_log(
    sandbox: Sandbox, config_dir: Path
) -> None:
    assert cli(config_dir, "apply", "--yes", "--no-email", *AS_OF).exit_code == 0  # the ledger
    customers = config_dir / "mappings" / "customers.yaml"
    text = customers.read_text()
    customers.write_text(text[: text.index("- id: zt-0007")])  # its mapping removed
    plan = cli(config_dir, "plan", *AS_OF)
    assert "zt-0007, agreement 1007\n" in plan.stdout, plan.stdout  # not "→ , ... 'None'"
    assert "'None'" not in plan.stdout and "zt-0007 zt-0007" not in plan.stdout
    assert cli(config_dir, "apply", "--yes", "--no-email", *AS_OF).exit_code == 0
    run_id = activity.list_runs(config_dir)[0].run_id
    shown = cli(config_dir, "activity", run_id).stdout
    assert "\nzt-0007, agreement #1007\n" in shown, shown  # not "company , agreement None"
    why = "no longer mapped: was SKU OKTA-WF of customer zt-0007"
    assert f"USD — {why}  done" in shown, shown  # the reason the plan gave, kept
    (md,) = config_dir.glob(f"runs/*/*/{run_id}.md")
    assert "None" not in md.read_text() and "remove — no longer mapped" in md.read_text()
