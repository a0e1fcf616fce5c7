"""Issue 28: the first hour of a new user. Every example in every --help runs; --config-dir
goes anywhere; messages name the fix and the next step, keep --config-dir, and show what
differs in words. Through the CLI against the sandbox on loopback, as a user runs it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import world_edits
from conftest import set_setting
from runlog_samples import success_result
from typer.main import get_command
from typer.testing import CliRunner, Result

from reconciler.cli import app, applying
from reconciler.cli.apply_report import interrupted_line
from reconciler.cli.help import EXAMPLE_RUN_ID, EXAMPLES
from reconciler.config.resources import SCHEMA_NAMES, example_dir
from reconciler.engine.interface import SyncOutcome
from reconciler.records import runlog
from reconciler.sandbox import Sandbox

GROUP = get_command(app)
VISIBLE = [n for n, c in GROUP.commands.items() if not c.hidden]  # type: ignore[attr-defined]
AS_OF = ["--as-of", "2026-11-24"]
README = Path(__file__).resolve().parents[2] / "README.md"


def cli(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), input=input)
    assert "Traceback" not in result.output, result.output
    return result


def fresh_config(root: Path) -> Path:
    shutil.copytree(example_dir(), root / "mappings")
    return root


# --- --config-dir before or after every command ----------------------------------------------


@pytest.mark.parametrize("command", VISIBLE)
def test_every_command_takes_config_dir_after_its_name(command: str) -> None:
    params = GROUP.commands[command].params  # type: ignore[attr-defined]
    assert any("--config-dir" in getattr(p, "opts", ()) for p in params), command


def test_show_and_schema_take_config_dir_before_and_after(
    sandbox: Sandbox, config_dir: Path, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    assert (
        cli("--config-dir", str(config_dir), "plan", *AS_OF, "--out", str(plan_file)).exit_code == 0
    )
    before = cli("--config-dir", str(config_dir), "show", str(plan_file))
    after = cli("show", "--config-dir", str(config_dir), str(plan_file))
    assert before.exit_code == after.exit_code == 0
    assert before.stdout == after.stdout and "Plan: 7 to add" in after.stdout
    schema_after = cli("schema", "--config-dir", str(config_dir), "plan")
    schema_before = cli("--config-dir", str(config_dir), "schema", "plan")
    assert schema_after.exit_code == schema_before.exit_code == 0
    assert schema_after.stdout == schema_before.stdout != ""


# --- help generated from what the commands do -----------------------------------------------


def test_schema_help_lists_every_schema_it_accepts() -> None:
    text = " ".join(cli("schema", "-h").stdout.split())
    for name in SCHEMA_NAMES:
        assert re.search(rf"\b{name}\b", text), name
        assert cli("schema", name).exit_code == 0


def test_the_activity_example_id_has_the_form_apply_gives_run_ids(tmp_path: Path) -> None:
    root = fresh_config(tmp_path / "cfg")
    started = dt.datetime(2026, 11, 15, 6, 0, 3, tzinfo=dt.UTC)
    handle = runlog.start_run(root, success_result().plan, trigger="scheduled", started=started)
    assert handle.run_id == EXAMPLE_RUN_ID  # runlog names a run exactly so
    assert f"reconcile activity {EXAMPLE_RUN_ID}" in cli("activity", "-h").stdout


def _example_words(line: str) -> list[str]:
    command = line.split("|")[0].split(">")[0]
    return shlex.split(command)[1:]


def _prepare(words: list[str], root: Path) -> None:
    """What a reader of the example has already done (the examples around it say so)."""
    if "plan.json" in words and "--out" not in words:
        assert cli("plan", *AS_OF, "--out", "plan.json").exit_code == 0
    if EXAMPLE_RUN_ID in words:
        started = dt.datetime(2026, 11, 15, 6, 0, 3, tzinfo=dt.UTC)
        result = success_result()
        runlog.start_run(root, result.plan, trigger="scheduled", started=started).finish(result)
    if "my-config" in words and "init" not in words:
        assert cli("init", "my-config").exit_code == 0
    if "billing-config" in words and "init" not in words:
        shutil.copytree(root / "mappings", root / "billing-config" / "mappings")


def _sandbox_example(words: list[str], env: dict[str, str], cwd: Path) -> None:
    """`reconcile sandbox` runs in the foreground: it must start, print the export lines and
    stop cleanly on Ctrl-C."""
    child = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *words], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    for said in iter(child.stderr.readline, ""):  # "" once it ended: fail below, no hang
        if "Sandbox listening" in said:
            break
    time.sleep(0.5)  # into its wait loop: Ctrl-C there is the normal way to stop it
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=60)
    assert first.startswith("export "), (first, err)
    assert child.returncode == 0 and "Sandbox stopped." in err


@pytest.mark.parametrize(
    ("command", "line"),
    [(c, line) for c in ["", *VISIBLE] for line, _ in EXAMPLES[c]],
    ids=[f"{c or 'reconcile'}: {line}" for c in ["", *VISIBLE] for line, _ in EXAMPLES[c]],
)
def test_every_example_in_every_help_runs(
    command: str,
    line: str,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not just parsed: run, in a config directory pointed at the sandbox, exit 0."""
    root = fresh_config(tmp_path / "cfg")
    monkeypatch.chdir(root)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the demo's kept directory
    words = _example_words(line)
    assert f"$ {line}" in cli(*([command] if command else []), "-h").stdout
    _prepare(words, root)
    if "sandbox" in words:
        _sandbox_example(words, {**os.environ, **sandbox.env()}, root)
        return
    asks = "apply" in words and "--yes" not in words and "plan.json" not in words
    if asks:  # run as at a terminal, answering the prompt as the user would
        monkeypatch.setattr(applying, "is_tty", lambda stream: True)
    result = cli(*words, input="yes\n" if asks else None)
    assert result.exit_code == 0, (line, result.output)


# --- messages: the user's --config-dir, one error style, what to do -------------------------


def test_the_hint_after_plan_out_keeps_config_dir(
    sandbox: Sandbox, config_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p2.json"
    result = cli("plan", "--config-dir", str(config_dir), *AS_OF, "--out", str(out))
    assert result.exit_code == 0
    assert f"apply exactly it with: reconcile --config-dir {config_dir} apply {out}" in (
        result.stderr
    )
    applied = cli(*f"--config-dir {config_dir} apply {out}".split())  # the hint, as printed
    assert applied.exit_code == 0, applied.output


def test_the_hint_after_a_selective_plan_applies_the_same_selection(
    sandbox: Sandbox, config_dir: Path
) -> None:
    args = ["--customer", "zt-0007", "--period", "current", *AS_OF]
    result = cli("plan", "--config-dir", str(config_dir), *args)
    assert result.exit_code == 0
    hint = f"next: `reconcile --config-dir {config_dir} apply {' '.join(args)}`"
    assert hint in result.stderr


def test_deactivate_outside_a_config_dir_names_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("deactivate")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "pass --config-dir DIR" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_mappings_dir_is_an_error_line_like_the_others(tmp_path: Path) -> None:
    result = cli("plan", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert all(line.startswith("error: ") for line in result.stderr.splitlines()), result.stderr
    assert "--config-dir" in result.stderr


def test_plan_says_when_the_integration_is_deactivated(sandbox: Sandbox, config_dir: Path) -> None:
    set_setting(config_dir, "enabled", "false")
    result = cli("plan", "--config-dir", str(config_dir), *AS_OF)
    assert result.exit_code == 0
    assert "note: integration deactivated" in result.stderr
    assert f"`reconcile --config-dir {config_dir} activate`" in result.stderr
    assert "next: " not in result.stderr  # apply would not make them: no such hint
    set_setting(config_dir, "enabled", "true")
    assert "deactivated" not in cli("plan", "--config-dir", str(config_dir), *AS_OF).stderr


def test_init_dry_run_lists_what_it_would_write_and_init_one_file_per_line(
    tmp_path: Path,
) -> None:
    target = tmp_path / "msp"
    dry = cli("init", str(target), "--dry-run")
    assert dry.exit_code == 0 and not target.exists()
    listed = [line.strip() for line in dry.stdout.splitlines() if line.startswith("  ")]
    assert dry.stdout.startswith(f"would create in {target}:\n")
    assert "mappings/settings.yaml" in listed and ".gitignore" in listed
    real = cli("init", str(target))
    assert real.exit_code == 0
    written = [line.strip() for line in real.stdout.splitlines() if line.startswith("  ")]
    assert written == listed  # exactly what the dry run said, one per line
    assert all((target / name).is_file() for name in written)
    assert f"`reconcile --config-dir {target} validate`" in real.stdout
    again = cli("init", str(target), "--dry-run")
    assert again.exit_code == 1 and "\n  mappings/settings.yaml\n" in again.stderr


# --- did you mean, from what ConnectWise and ZeroTek returned ----------------------------------


def test_did_you_mean_for_names_and_ids_the_plan_checked(
    sandbox: Sandbox, config_dir: Path
) -> None:
    customers = config_dir / "mappings" / "customers.yaml"
    text = customers.read_text()
    text = text.replace("agreement: Acme Managed Services", "agreement: Acme Managed Service")
    text += (
        "- id: zt-099\n"  # ZeroTek knows zt-0099
        "  name: Unmapped Startup\n"
        "  company: ACEM\n"  # ConnectWise has ACME
        "  agreement: 1001\n"
    )
    customers.write_text(text)
    skus = config_dir / "mappings" / "skus.yaml"
    skus.write_text(skus.read_text().replace("product: ZT-OKTA-WF", "product: ZT-OKTA-SS0", 1))
    result = cli("plan", "--config-dir", str(config_dir), *AS_OF)
    out = result.stdout + result.stderr
    assert result.exit_code == 1
    assert "no agreement named 'Acme Managed Service' for company 'ACME'; did you mean " \
        "'Acme Managed Services'?" in out  # fmt: skip
    assert "ConnectWise company 'ACEM' not found; did you mean 'ACME'?" in out
    assert "ZeroTek does not know customer 'zt-099': left untouched (check the id; did you " \
        "mean 'zt-0099'?)" in out  # fmt: skip
    assert "catalog product 'ZT-OKTA-SS0' (SKU OKTA-WF) is not found in ConnectWise; did you " \
        "mean 'ZT-OKTA-SSO'?" in out  # fmt: skip
    typo = cli("plan", "--config-dir", str(config_dir), "--customer", "zt-001", *AS_OF)
    assert typo.exit_code == 1 and "did you mean 'zt-0001'?" in typo.stderr
    assert sandbox.stats.writes == 0


def test_a_local_refusal_is_not_recorded_and_json_says_not_run(
    sandbox: Sandbox, config_dir: Path
) -> None:
    set_setting(config_dir, "min_existing", "1")
    set_setting(config_dir, "max_quantity_change_percent", "1")
    result = cli("--config-dir", str(config_dir), "apply", "--yes", "--format", "json", *AS_OF)
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert (data["outcome"], data["record"], data["run_id"]) == ("not-run", None, None)
    assert "unsafe plan refused" in data["error"] and "not recorded in runs/" in data["error"]
    assert not (config_dir / "runs").exists()


# --- stale plans in words, also in activity -------------------------------------------------


def test_a_stale_plan_says_what_moved_in_words_and_activity_repeats_it(
    sandbox: Sandbox, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # recorded: CI keeps refused attempts in runs/
    plan_file = tmp_path / "plan.json"
    assert (
        cli("--config-dir", str(config_dir), "plan", *AS_OF, "--out", str(plan_file)).exit_code == 0
    )
    world_edits.update_addition(sandbox, 9006, cancelledDate="2026-11-20T00:00:00Z")
    world_edits.set_addition_quantity(sandbox, 9001, 41)
    refused = cli("--config-dir", str(config_dir), "apply", str(plan_file))
    # 13.7: the two agreements read just before their first write are skipped as stale,
    # in words; the other customers' 9 writes are made.
    assert refused.exit_code == 1 and sandbox.stats.writes == 9
    lines = [
        "zt-0001: stale: agreement 1001 addition #9001 (ZT-OKTA-SSO): quantity 40 → 41 since "
        "the plan was made",
        "zt-0002: stale: agreement 1002 addition #9006 (ZT-OKTA-UD): cancelled or removed since "
        "the plan was made",
    ]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert [e.removeprefix("error: ").split("; skipped")[0] for e in errors] == lines
    assert "{" not in refused.stderr and "None" not in refused.stderr  # no Python reprs
    (run_id,) = [p.stem for p in (config_dir / "runs").rglob("*.json")]
    shown = cli("--config-dir", str(config_dir), "activity", run_id).stdout
    for line in lines:  # under each customer's heading, the same words
        assert f"error: {line.split(': ', 1)[1]}; skipped" in shown


def test_a_long_drift_is_capped_with_a_count() -> None:
    from reconciler.plan import drift

    adds = {str(i): {"product": "P", "quantity": i, "cancelled_date": None} for i in range(30)}
    moved = {k: {**v, "quantity": v["quantity"] + 1} for k, v in adds.items()}
    saved = {"agreements": {"7": {"additions": adds}}, "catalog": {}}
    now = {"agreements": {"7": {"additions": moved}}, "catalog": {}}
    lines = drift.describe(saved, now, limit=10)
    assert len(lines) == 11 and lines[-1] == "... and 20 more differences"
    assert lines[0] == "agreement 7 addition #0 (P): quantity 0 → 1 since the plan was made"


# --- interrupt: what remains, or that nothing does --------------------------------------------


def _outcome(tmp_path: Path, keep_results: bool) -> SyncOutcome:
    result = success_result()
    if not keep_results:  # the first customer's writes were never started
        first = dataclasses.replace(result.customers[0], results=())
        result = dataclasses.replace(result, customers=(first, *result.customers[1:]))
    root = fresh_config(tmp_path / "cfg")
    handle = runlog.start_run(root, result.plan, trigger="manual", started=result.started)
    path = handle.finish(result, interrupted_by="SIGINT")
    return SyncOutcome(result, handle.record, path, (), "SIGINT", 130)


def test_an_interrupt_after_every_write_says_nothing_remains(tmp_path: Path) -> None:
    line = interrupted_line(_outcome(tmp_path, True), tmp_path / "cfg")
    assert "nothing remains to apply" in line and "Re-run" not in line


def test_an_interrupt_before_some_writes_says_what_remains(tmp_path: Path) -> None:
    line = interrupted_line(_outcome(tmp_path, False), tmp_path / "cfg")
    assert "2 changes for 1 customer not started" in line
    # the same period: a re-run on another day would plan another one
    assert f"`reconcile --config-dir {tmp_path / 'cfg'} apply --as-of 2026-11-24` again" in line


# --- the README's sample is today's output -----------------------------------------------------


def test_the_readme_sample_plan_is_the_real_output_with_its_currency(
    sandbox: Sandbox, config_dir: Path
) -> None:
    text = README.read_text(encoding="utf-8")
    lead = "Real output (`reconcile plan` against the sandbox, as of 2026-11-24):\n\n```text\n"
    sample = text[text.index(lead) + len(lead) :].split("```", 1)[0]
    real = cli("--config-dir", str(config_dir), "plan", *AS_OF).stdout
    assert sample == real
    assert "revenue +274.50 USD/month" in sample


def test_report_says_in_words_when_a_row_has_no_price(sandbox: Sandbox, config_dir: Path) -> None:
    out = cli("--config-dir", str(config_dir), "report", *AS_OF).stdout
    assert "not priced = not priced" not in out and "(+1 not priced)" not in out
    assert (
        "zt-0006 Globex: OKTA-PAM (no catalog product) ZeroTek 3, billed 0: 3 licences, no "
        "price known (none in skus.yaml or the ConnectWise catalog)"
    ) in out
    assert "(plus 1 row with no price, not counted in the amount)" in out


# --- the newcomer's tour ------------------------------------------------------------------------


def test_the_newcomer_tour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """init -> edit -> validate -> sandbox -> status -> plan -> apply -> activity -> report
    -> discover -> deactivate, as the README walks it: each step's exit code, and the next
    step named in its output, with the user's --config-dir kept."""
    cfg = tmp_path / "billing"
    dash = f"reconcile --config-dir {cfg}"

    init = cli("init", str(cfg))
    assert init.exit_code == 0 and f"`{dash} validate`" in init.stdout

    # edit: a newcomer's first edit, with the classic mistake first
    settings = cfg / "mappings" / "settings.yaml"
    good = settings.read_text()
    settings.write_text(good.replace("timezone: ", "timezone:", 1))
    broken = cli("--config-dir", str(cfg), "validate")
    assert broken.exit_code == 1 and "missing space after ':'" in broken.stderr
    assert f"`{dash} validate` again" in broken.stderr
    settings.write_text(good.replace("  sync_day: 15", "  sync_day: 14"))

    valid = cli("--config-dir", str(cfg), "validate")
    assert valid.exit_code == 0 and f"`{dash} status`" in valid.stderr

    with Sandbox() as sb:  # what `reconcile sandbox` serves; its export lines, applied
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        status = cli("--config-dir", str(cfg), "status")
        assert status.exit_code == 0 and f"`{dash} plan`" in status.stderr

        plan = cli("--config-dir", str(cfg), "plan", *AS_OF)
        assert plan.exit_code == 0 and f"`{dash} apply --as-of 2026-11-24`" in plan.stderr

        monkeypatch.setattr(applying, "is_tty", lambda stream: True)
        apply = cli("--config-dir", str(cfg), "apply", *AS_OF, "--no-email", input="yes\n")
        assert apply.exit_code == 0, apply.output
        match = re.search(rf"next: `{re.escape(dash)} activity (\S+)`", apply.stderr)
        assert match, apply.stderr

        activity = cli("--config-dir", str(cfg), "activity", match.group(1))
        assert activity.exit_code == 0 and "success" in activity.stdout

        report = cli("--config-dir", str(cfg), "report", *AS_OF)
        assert report.exit_code == 0 and f"`{dash} discover`" in report.stderr

        discover = cli("--config-dir", str(cfg), "discover", *AS_OF)
        assert discover.exit_code == 0 and "not proposed: zt-0099" in discover.stdout

    deactivate = cli("--config-dir", str(cfg), "deactivate")
    assert deactivate.exit_code == 0 and f"`{dash} activate`" in deactivate.stderr
