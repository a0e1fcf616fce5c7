"""The GitHub Actions workflows: linted (actionlint), audited (zizmor), and their `run:` steps
executed in order in a temporary clone of a config repository made by `reconcile init`,
against the sandbox, with the runner's files simulated (see workflow_runner.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_github import FakeGitHub
from workflow_runner import (
    Cancel,
    Contexts,
    JobResult,
    StepResult,
    load_workflow,
    run_job,
    runner_env,
    skipped_job,
)

from reconciler.config import pin, scaffold
from reconciler.config.resources import workflows_dir
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.plan.render import money
from reconciler.sandbox import Sandbox, default_fixture

WORKFLOWS = workflows_dir()
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
AS_OF = "2026-11-24"  # the sandbox fixture's "today"
REPO = "msp/billing-config"
BRANCH = "main"
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"  # the pull request's head commit


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def test_the_four_workflows_exist() -> None:
    names = {p.name for p in WORKFLOW_FILES}
    assert names == {"validate.yml", "sync.yml", "unmapped.yml", "tests.yml"}


def test_actionlint_reports_nothing() -> None:
    proc = subprocess.run(
        [_tool("actionlint"), "-no-color", *map(str, WORKFLOW_FILES)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def _zizmor(path: Path, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--format", "json", *args, str(path)],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    findings = json.loads(proc.stdout)
    assert isinstance(findings, list), proc.stderr
    return [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']} "
        f"@ {f['locations'][0]['symbolic']['key']}"
        for f in findings
    ]


def test_zizmor_finds_nothing() -> None:
    # Every finding, of every severity; an accepted one carries an inline
    # `# zizmor: ignore[...]` with the reason beside it.
    assert _zizmor(WORKFLOWS.parent) == []


def test_zizmor_auditor_persona_finds_nothing() -> None:
    assert _zizmor(WORKFLOWS.parent, "--persona=auditor") == []


def test_actions_are_pinned_by_commit_sha() -> None:
    for path in WORKFLOW_FILES:
        for ref in re.findall(r"uses:\s*(\S+)", path.read_text(encoding="utf-8")):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"


def test_init_writes_the_workflows_a_config_repository_runs(tmp_path: Path) -> None:
    source = pin.parse_pin(f"git+https://github.com/msp/zerotek-cw-reconciler@{'a' * 40}")
    written = scaffold.init(tmp_path, source)
    workflows = sorted(t for t in written if t.startswith(".github/workflows/"))
    assert workflows == sorted(f".github/workflows/{n}" for n in scaffold.WORKFLOW_FILES)
    assert ".github/workflows/tests.yml" not in written  # the reconciler's own CI
    for target in workflows:
        shipped = (WORKFLOWS / Path(target).name).read_text(encoding="utf-8")
        # The same workflow, but installing the pinned reconciler instead of a checkout.
        expected = shipped.replace(pin.CHECKOUT_INSTALL, source.install_command())
        assert (tmp_path / target).read_text(encoding="utf-8") == expected != shipped


def test_a_fresh_init_repository_lints_clean(tmp_path: Path) -> None:
    scaffold.init(tmp_path, pin.parse_pin(f"git+https://github.com/msp/r@{'b' * 40}"))
    files = sorted((tmp_path / ".github/workflows").glob("*.yml"))
    proc = subprocess.run(
        [_tool("actionlint"), "-no-color", *map(str, files)],
        capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _zizmor(tmp_path / ".github") == []
    assert _zizmor(tmp_path / ".github", "--persona=auditor") == []


# --- executing the run: steps --------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "MSP Admin", "GIT_AUTHOR_EMAIL": "admin@msp.example",
        "GIT_COMMITTER_NAME": "MSP Admin", "GIT_COMMITTER_EMAIL": "admin@msp.example",
    }  # fmt: skip
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare "origin" holding a config repository exactly as `reconcile init` makes it."""
    seed, bare = tmp_path / "seed", tmp_path / "origin.git"
    seed.mkdir()
    init = subprocess.run(
        [sys.executable, "-m", "reconciler", "init", str(seed)], capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    _git(tmp_path, "init", "--quiet", "--bare", "-b", BRANCH, str(bare))
    _git(seed, "init", "--quiet", "-b", BRANCH)
    _git(seed, "add", ".")
    _git(seed, "commit", "--quiet", "-m", "reconcile init")
    _git(seed, "push", "--quiet", str(bare), BRANCH)
    return bare


@pytest.fixture
def clone(origin: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    _git(tmp_path, "clone", "--quiet", str(origin), str(work))
    return work


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(default_fixture()) as sb:
        yield sb


def _is_install(name: str) -> bool:
    return name.startswith("Install")  # the package is already installed here


def _run(
    workflow: str, job: str, workdir: Path, ctx: Contexts, event: str, *,
    artifacts: Path | None = None, cancel: Cancel | None = None, **env: str,
) -> JobResult:  # fmt: skip
    base = runner_env(
        workdir.parent / "home",
        GITHUB_EVENT_NAME=event,
        GITHUB_WORKSPACE=str(workdir),
        GITHUB_REPOSITORY=REPO,
        GITHUB_REF_NAME=BRANCH,
        GITHUB_RUN_ID="4242",
        GITHUB_SERVER_URL="https://github.example",
        **env,
    )
    (workdir.parent / "home").mkdir(exist_ok=True)
    ctx.github = {"event_name": event, **ctx.github}
    return run_job(
        load_workflow(WORKFLOWS / workflow), job, ctx, workdir, base, skip=_is_install,
        artifacts=artifacts, cancel=cancel,
    )  # fmt: skip


def _github(**extra: Any) -> dict[str, Any]:
    """The `github` context (event_name is added by _run)."""
    return {
        "repository": REPO, "ref_name": BRANCH, "run_id": "4242",
        "token": FakeGitHub.token, "triggering_actor": "msp-admin",
        "event": {"repository": {"default_branch": BRANCH}}, **extra,
    }  # fmt: skip


def _pr_event(head_repo: str = REPO) -> dict[str, Any]:
    pr = {"number": 7, "head": {"repo": {"full_name": head_repo}, "sha": HEAD_SHA}}
    return _github(event={"pull_request": pr})


def _job_if(workflow: str, job: str, ctx: Contexts) -> bool:
    return ctx.condition(load_workflow(WORKFLOWS / workflow)["jobs"][job].get("if"))


def _checkout_base(clone: Path, origin: Path) -> None:
    """What validate.yml's second checkout does: the base branch's files under .base/."""
    _git(clone, "clone", "--quiet", str(origin), ".base")


def test_validate_passes_on_the_example_and_upserts_one_plan_comment(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    _checkout_base(clone, origin)
    result = _run("validate.yml", "validate", clone, Contexts(github=_pr_event()), "pull_request")
    assert not result.failed, result.steps
    assert "mappings valid" in result.step("Validate the mappings").stdout

    gh = FakeGitHub(repo=REPO).start()
    try:
        gh.add_comment(7, "a reviewer's comment")
        ctx = Contexts(github=_pr_event(), secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF})
        assert _job_if("validate.yml", "plan", ctx)
        for _ in range(2):  # the second push to the PR updates the comment in place
            plan = _run("validate.yml", "plan", clone, ctx, "pull_request", GITHUB_API_URL=gh.url)
            assert not plan.failed, [(s.name, s.stderr) for s in plan.steps]
        assert len(gh.calls("POST")) == 1 and len(gh.calls("PATCH")) == 1
        ours = gh.comments[7][1]
        planned = (clone / "plan.md").read_text(encoding="utf-8").removeprefix(PLAN_MARKER)
        assert ours["body"].endswith(planned.strip() + "\n")
        assert ours["body"].startswith(PLAN_MARKER) and f"as of {AS_OF}" in ours["body"]
        # The same mappings as the base branch: everything the plan shows is drift.
        assert "Merging it changes nothing in ConnectWise by itself." in ours["body"]
        assert gh.comments[7][0]["body"] == "a reviewer's comment"
        assert (clone / "plan.md").read_text(encoding="utf-8") in plan.summary
        assert sandbox.stats.writes == 0  # planning is read-only
    finally:
        gh.stop()


def test_validate_does_not_plan_for_forks_or_without_secrets(clone: Path) -> None:
    assert not _job_if("validate.yml", "plan", Contexts(github=_pr_event("stranger/fork")))
    plan = _run("validate.yml", "plan", clone, Contexts(github=_pr_event()), "pull_request")
    assert not plan.failed
    assert "::notice title=No plan::" in plan.step("Check for credentials").stdout
    assert not plan.step("Plan").ran and not plan.step("Post the plan comment").ran


def test_validate_fails_with_annotations_on_a_broken_mapping(clone: Path) -> None:
    customers = clone / "mappings" / "customers.yaml"
    text = customers.read_text(encoding="utf-8")
    broken = text.replace("  company: OBRIEN", "  company: OBRIEN\n  colour: green", 1)
    assert broken != text
    customers.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index("  colour: green") + 1
    result = _run("validate.yml", "validate", clone, Contexts(github=_pr_event()), "pull_request")
    assert result.failed
    step = result.step("Validate the mappings")
    assert step.code == 1
    assert f"::error file=mappings/customers.yaml,line={line}," in step.stdout


# The daily schedule plans only within a week of the sync day (15th): 5 days after it.
DUE_AS_OF = "2026-11-20"


@dataclass
class SyncRun:
    """sync.yml's two jobs as GitHub runs them: `plan` in the checkout, then (when its `if:`
    holds) `apply` on a fresh runner: a new checkout of the same commit, the plan arriving
    only through the artifact store."""

    plan: JobResult
    apply: JobResult
    apply_dir: Path
    artifacts: Path

    @property
    def failed(self) -> bool:
        return self.plan.failed or self.apply.failed

    @property
    def summary(self) -> str:
        return self.plan.summary + self.apply.summary

    @property
    def stdout(self) -> str:
        return self.plan.stdout + self.apply.stdout

    @property
    def steps(self) -> list[StepResult]:
        return self.plan.steps + self.apply.steps

    def step(self, name: str) -> StepResult:
        for job in (self.apply, self.plan):
            try:
                return job.step(name)
            except KeyError:
                pass
        raise KeyError(name)


def _sync(
    clone: Path, sandbox: Sandbox, event: str, as_of: str | None = None, *,
    cancel: Cancel | None = None, secrets: dict[str, str] | None = None,
    runner: dict[str, str] | None = None, **inputs: Any,
) -> SyncRun:  # fmt: skip
    """`secrets`: more repository/environment secrets; `runner`: more runner environment."""
    today = as_of or (DUE_AS_OF if event == "schedule" else AS_OF)
    extra = runner or {}

    def context() -> Contexts:
        return Contexts(github=_github(), inputs=inputs, secrets={**sandbox.env(),
                        **(secrets or {})}, vars={"RECONCILE_AS_OF": today})  # fmt: skip

    runner = clone.parent / f"runner-{len(list(clone.parent.glob('runner-*')))}"
    artifacts, apply_dir = runner / "artifacts", runner / "apply" / "work"
    artifacts.mkdir(parents=True)
    plan = _run("sync.yml", "plan", clone, context(), event, artifacts=artifacts, **extra)
    ctx = context()
    ctx.github = {"event_name": event, **ctx.github}
    ctx.needs = {"plan": {"outputs": plan.outputs, "result": "failure" if plan.failed else
                          "success"}}  # fmt: skip
    ctx.job_failed = plan.failed
    workflow = load_workflow(WORKFLOWS / "sync.yml")
    if not ctx.condition(workflow["jobs"]["apply"].get("if")):
        return SyncRun(plan, skipped_job(workflow, "apply"), apply_dir, artifacts)
    # actions/checkout with ref: github.sha on a new machine: the commit the plan job had.
    sha = _git(clone, "rev-parse", "HEAD").strip()
    origin = _git(clone, "remote", "get-url", "origin").strip()
    _git(clone.parent, "clone", "--quiet", origin, str(apply_dir))
    _git(apply_dir, "checkout", "--quiet", "--detach", sha)
    apply = _run("sync.yml", "apply", apply_dir, ctx, event, artifacts=artifacts, cancel=cancel,
                 **extra)  # fmt: skip
    return SyncRun(plan, apply, apply_dir, artifacts)


def _origin_log(origin: Path) -> list[str]:
    return _git(origin, "log", "--format=%an|%s", BRANCH).splitlines()


def _planned_changes(plan_json: Path) -> int:
    plan = json.loads(plan_json.read_text(encoding="utf-8"))
    return sum(len(c["changes"]) for c in plan["customers"])


def test_scheduled_sync_applies_and_commits_the_run_log(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    result = _sync(clone, sandbox, "schedule")
    assert not result.failed, [(s.name, s.stdout[-500:], s.stderr[-500:]) for s in result.steps]
    changes = _planned_changes(clone / "plan.json")
    assert changes > 0 and sandbox.stats.writes == changes
    log = _origin_log(origin)
    assert log[0] == "github-actions[bot]|Sync run log (schedule)"
    files = _git(origin, "show", "--name-only", "--format=", BRANCH).split()
    assert "runs/INDEX.md" in files
    assert "state/managed.json" in files  # the ownership ledger goes back with the run log
    (run_json,) = [f for f in files if f.startswith("runs/") and f.endswith(".json")]
    run = json.loads(_git(origin, "show", f"{BRANCH}:{run_json}"))
    assert run["trigger"] == "scheduled" and run["period"]["as_of"] == DUE_AS_OF
    twin = _git(origin, "show", f"{BRANCH}:{run_json[: -len('.json')]}.md")
    assert twin.strip() and twin.strip() in result.summary  # the run's Markdown in the summary
    assert "## Requests" in twin  # the apply's request statistics, in the job summary too
    writes = sum(
        n
        for kind, n in run["requests"]["connectwise"]["by_kind"].items()
        if kind.split()[0] in ("POST", "PATCH", "DELETE")
    )
    assert writes == changes  # no faults injected: one request per write
    assert "Push rejected" not in result.stdout

    # The next day's scheduled run finds the period billed in runs/: no plan, no apply.
    writes, log = sandbox.stats.writes, _origin_log(origin)
    (clone / "plan.json").unlink()
    _git(clone, "pull", "--quiet")  # tomorrow's checkout: the branch with the run log on it
    again = _sync(clone, sandbox, "schedule", as_of="2026-11-21")
    assert not again.failed, [
        (s.name, s.code, s.stdout[-500:], s.stderr[-500:]) for s in again.steps if s.ran
    ]
    assert "already has a successful scheduled sync" in again.summary
    assert not again.step("Apply").ran and not again.step("Commit the run log").ran
    assert not (clone / "plan.json").exists()
    assert sandbox.stats.writes == writes and _origin_log(origin) == log


def test_the_daily_schedule_does_nothing_outside_the_due_week(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    before = _origin_log(origin)
    result = _sync(clone, sandbox, "schedule", as_of="2026-11-24")  # 9 days after the 15th
    assert not result.failed, [(s.name, s.stdout[-500:], s.stderr[-500:]) for s in result.steps]
    assert "not due: today is 2026-11-24, 9 days after the sync day 2026-11-15" in result.summary
    assert not result.step("Apply").ran and not result.step("Commit the run log").ran
    assert not (clone / "plan.json").exists()
    assert sandbox.stats.total == 0 and _origin_log(origin) == before


def test_sync_rebases_and_retries_when_the_branch_moved(
    clone: Path, origin: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Someone merges a mappings change after the job checked out, before it pushes.
    other = tmp_path / "other"
    _git(tmp_path, "clone", "--quiet", str(origin), str(other))
    (other / "NOTES.md").write_text("billing contacts changed\n", encoding="utf-8")
    _git(other, "add", "NOTES.md")
    _git(other, "commit", "--quiet", "-m", "a merged pull request")
    _git(other, "push", "--quiet", "origin", BRANCH)

    result = _sync(clone, sandbox, "schedule")
    assert not result.failed, [(s.name, s.stdout[-500:], s.stderr[-500:]) for s in result.steps]
    log = _origin_log(origin)
    assert log[:2] == [
        "github-actions[bot]|Sync run log (schedule)",
        "MSP Admin|a merged pull request",
    ]
    tree = _git(origin, "ls-tree", "-r", "--name-only", BRANCH).split()
    assert "NOTES.md" in tree and "runs/INDEX.md" in tree


def _commit_step(workdir: Path, event: str = "workflow_dispatch") -> subprocess.Popen[str]:
    """sync.yml's "Commit the run log" step, as bash runs it, in `workdir`."""
    job = load_workflow(WORKFLOWS / "sync.yml")["jobs"]["apply"]
    (step,) = [s for s in job["steps"] if s.get("name") == "Commit the run log"]
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(workdir), "GIT_CONFIG_NOSYSTEM": "1", "BRANCH": BRANCH,
        "GITHUB_TOKEN": "not-a-real-token", "GITHUB_EVENT_NAME": event,
    }  # fmt: skip
    return subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _record_a_run(workdir: Path, hour: int) -> str:
    from runlog_samples import STARTED, success_result

    from reconciler.records import runlog

    result = success_result()
    handle = runlog.start_run(
        workdir, result.plan, trigger="manual", started=STARTED.replace(hour=hour)
    )
    handle.finish(result)
    return handle.run_id


def test_commit_back_regenerates_the_index_on_the_latest_branch(
    origin: Path, tmp_path: Path
) -> None:
    """Four syncs' run logs reach the branch: a queued one pushes from the commit it was
    triggered on (stale: its INDEX.md lacks the previous run), then two push at once. Each
    regenerates INDEX.md on top of the branch instead of merging it, so none conflicts,
    none is lost, and the pushed INDEX.md is exactly the one the run files make."""
    clones = {}
    for name in "abcd":  # all checked out at the same (trigger) commit
        clones[name] = tmp_path / name
        _git(tmp_path, "clone", "--quiet", str(origin), str(clones[name]))
    ids = {name: _record_a_run(clones[name], hour) for hour, name in enumerate("abcd", 8)}

    for name in "ab":  # one after the other: b's checkout lacks a's run
        step = _commit_step(clones[name])
        out, err = step.communicate(timeout=120)
        assert step.returncode == 0, out + err
    racing = [_commit_step(clones[name]) for name in "cd"]  # at the same time
    for step in racing:
        out, err = step.communicate(timeout=120)
        assert step.returncode == 0, out + err

    final = tmp_path / "final"
    _git(tmp_path, "clone", "--quiet", str(origin), str(final))
    runs = final / "runs"
    assert sorted(p.stem for p in runs.glob("*/*/*.json")) == sorted(ids.values())
    index = (runs / "INDEX.md").read_text(encoding="utf-8")
    assert all(f"[{run_id}]" in index for run_id in ids.values())
    from reconciler.records import activity

    activity.rebuild_index(final)  # what the run files make, regenerated here
    assert (runs / "INDEX.md").read_text(encoding="utf-8") == index
    log = _origin_log(origin)
    assert log.count("github-actions[bot]|Sync run log (workflow_dispatch)") == 4


def test_dry_run_plans_the_chosen_customer_and_period_and_writes_nothing(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    before = _origin_log(origin)
    result = _sync(
        clone, sandbox, "workflow_dispatch",
        customer="zt-0001", period="current", dry_run=True, as_of="",
    )  # fmt: skip
    assert not result.failed, [(s.name, s.stderr[-500:]) for s in result.steps]
    assert not result.step("Apply").ran and not result.step("Commit the run log").ran
    assert sandbox.stats.writes == 0
    assert not (clone / "runs").exists() and _origin_log(origin) == before
    plan = json.loads((clone / "plan.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in plan["customers"]] == ["zt-0001"]
    assert plan["period"]["kind"] == "current" and plan["period"]["as_of"] == AS_OF
    assert (clone / "plan.md").read_text(encoding="utf-8") in result.summary


def test_a_deactivated_integration_ends_green_and_does_nothing(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    settings = clone / "mappings" / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(re.sub(r"(?m)^enabled: true", "enabled: false", text), encoding="utf-8")
    before = _origin_log(origin)
    result = _sync(clone, sandbox, "schedule")
    assert not result.failed
    assert "::notice title=Sync skipped::" in result.step("Check the integration is active").stdout
    ran = [s.name for s in result.steps if s.ran]
    assert ran == ["Check the integration is active"]
    assert sandbox.stats.writes == 0 and _origin_log(origin) == before


def test_unmapped_check_lists_unmapped_skus_in_the_summary(clone: Path, sandbox: Sandbox) -> None:
    ctx = Contexts(github=_github(), secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF})
    result = _run("unmapped.yml", "check-unmapped", clone, ctx, "schedule")
    assert not result.failed, [(s.name, s.stderr[-500:]) for s in result.steps]
    mapped = {row["sku"] for row in yaml.safe_load((clone / "mappings/skus.yaml").read_text())}
    used = {a.sku for a in default_fixture().assignments}
    assert used - mapped, "the fixture should use an unmapped SKU"
    assert any(sku in result.summary for sku in used - mapped)
    assert sandbox.stats.writes == 0


def test_tests_workflow_runs_ruff_mypy_and_pytest(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\naddopts = '-q'\n[tool.mypy]\nfiles = ['tests']\nstrict = true\n"
    )
    (project / "tests" / "test_ok.py").write_text("def test_ok() -> None:\n    assert True\n")
    ok = _run("tests.yml", "tests", project, Contexts(github=_github()), "push")
    assert not ok.failed, [(s.name, s.stdout[-500:], s.stderr[-500:]) for s in ok.steps]
    assert "1 passed" in ok.step("Pytest").stdout
    assert "Success: no issues found" in ok.step("Mypy").stdout

    (project / "tests" / "test_ok.py").write_text("import os\ndef test_ok(): assert True\n")
    bad = _run("tests.yml", "tests", project, Contexts(github=_github()), "push")
    assert bad.failed and not bad.step("Pytest").ran
    assert "::error" in bad.step("Ruff").stdout  # annotations on the offending line


def test_a_customer_plan_error_is_annotated_at_that_customer_in_the_mapping(
    clone: Path, sandbox: Sandbox
) -> None:
    customers = clone / "mappings" / "customers.yaml"
    text = customers.read_text(encoding="utf-8")
    broken = text.replace("  agreement: 1004", "  agreement: No Such Agreement", 1)
    assert broken != text
    customers.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index("- id: zt-0004") + 1
    ctx = Contexts(github=_pr_event(), secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF})
    gh = FakeGitHub(repo=REPO).start()
    try:
        plan = _run("validate.yml", "plan", clone, ctx, "pull_request", GITHUB_API_URL=gh.url)
    finally:
        gh.stop()
    assert plan.failed and plan.step("Plan").outputs["exit-code"] == "1"
    annotations = [
        a for a in plan.step("Plan").stderr.splitlines() if a.startswith("::error file=")
    ]
    assert len(annotations) == 1, plan.step("Plan").stderr
    assert annotations[0].startswith(f"::error file=mappings/customers.yaml,line={line},col=")
    assert "::zt-0004: " in annotations[0] and "No Such Agreement" in annotations[0]
    assert gh.comments[7][0]["body"].startswith(PLAN_MARKER)  # the others are still planned


def test_the_plan_comment_separates_this_pull_request_from_drift(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    """A pull request adds a customer and excludes a SKU for another, while a third
    customer has drift: "This pull request" holds exactly the first two, with their delta."""
    _checkout_base(clone, origin)
    customers = clone / "mappings" / "customers.yaml"
    text = customers.read_text(encoding="utf-8")
    changed = (
        text.replace(  # O'Brien's Universal Directory becomes part of a bundle
            "  agreement: 1002                       # by ConnectWise agreement id\n",
            "  agreement: 1002                       # by ConnectWise agreement id\n"
            "  exclude_skus: [OKTA-UD]\n",
        )
        + "\n- id: zt-0099\n  name: Unmapped Startup\n  company: SMITHSONS\n  agreement: 1022\n"
    )
    assert changed.count("exclude_skus: [OKTA-UD]") == 2
    customers.write_text(changed, encoding="utf-8")
    env = {**os.environ, **sandbox.env()}

    def plan_json(*args: str) -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", "--as-of", AS_OF, "--format", "json",
             *args], cwd=clone, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    ctx = Contexts(github=_pr_event(), secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF})
    gh = FakeGitHub(repo=REPO).start()
    try:
        plan = _run("validate.yml", "plan", clone, ctx, "pull_request", GITHUB_API_URL=gh.url)
        assert not plan.failed, [(s.name, s.stderr[-800:]) for s in plan.steps]
    finally:
        gh.stop()
    body = gh.comments[7][0]["body"]
    assert body.index("#### This pull request") < body.index("#### Drift")
    mine, drift = body.split("#### This pull request", 1)[1].split("#### Drift", 1)
    drift = drift.split("####")[0]  # warnings follow in their own section
    assert set(re.findall(r"\*\*(zt-\d+)\*\*", mine)) == {"zt-0099", "zt-0002"}
    assert "**zt-0001**" in drift and "zt-0099" not in drift and "zt-0002" not in drift
    # Its delta, independently: what the head plan bills minus what the base plan bills.
    head = plan_json()
    base = plan_json("--config-dir", ".base")
    own = Decimal(head["summary"]["revenue_delta"]) - Decimal(base["summary"]["revenue_delta"])
    assert own > 0
    assert f"Monthly revenue change of merging it: **{money(own, 'USD')}**" in mine
    # The JSON labels agree: zt-0099's add is the pull request's, O'Brien's removal dropped.
    labelled = plan_json("--baseline", ".base")
    causes = {(c["id"], ch["action"], ch["sku"], ch["cause"]) for c in labelled["customers"]
              for ch in c["changes"]}  # fmt: skip
    assert {x for x in causes if x[3] != "drift"} == {
        ("zt-0099", "add", "OKTA-SSO", "change"),
        ("zt-0002", "remove", "OKTA-UD", "dropped"),
    }
    assert ("zt-0001", "update", "OKTA-SSO", "drift") in causes
    assert labelled["baseline"]["pull_request_revenue_delta"] == f"{own:.2f}"
    assert sandbox.stats.writes == 0


# --- the two-job sync: plan -> artifact -> approved apply ------------------------------------


def test_the_apply_job_applies_the_artifacts_plan_byte_for_byte(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    result = _sync(clone, sandbox, "workflow_dispatch", customer="", period="last-billing-period",
                   dry_run=False, as_of="", force=False)  # fmt: skip
    assert not result.failed, [(s.name, s.code, s.stderr[-500:]) for s in result.steps if s.ran]
    planned = (clone / "plan.json").read_bytes()
    # The plan job held no write secret's step: its secrets are the read-only ones.
    assert result.plan.outputs["planned"] == "true"
    assert result.plan.outputs["plan-sha256"] == hashlib.sha256(planned).hexdigest()
    assert (result.artifacts / "sync-plan-4242" / "plan.json").read_bytes() == planned
    assert (result.apply_dir / "plan.json").read_bytes() == planned
    assert result.step("Check the plan is the one planned").code == 0
    # What was written is exactly what the plan said, change for change.
    plan = json.loads(planned)
    expected = sorted((c["id"], ch["action"], ch["product"], ch["after"])
                      for c in plan["customers"] for ch in c["changes"])  # fmt: skip
    assert expected and sandbox.stats.writes == len(expected)
    (run_file,) = (result.apply_dir / "runs").rglob("*-manual.json")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    written = sorted((c["id"], ch["action"], ch["product"], ch["after"])
                     for c in run["customers"] for ch in c["changes"])  # fmt: skip
    assert written == expected and run["outcome"] == "success"
    assert _origin_log(origin)[0] == "github-actions[bot]|Sync run log (workflow_dispatch)"
    assert (result.artifacts / "sync-run-4242" / run_file.relative_to(result.apply_dir)).is_file()


def test_the_apply_job_refuses_a_plan_artifact_that_is_not_the_one_planned(
    clone: Path, sandbox: Sandbox
) -> None:
    # Swap the artifact between the jobs (a compromised store, a re-run picking up another
    # run's plan): the hash the plan job published no longer matches.
    ctx_inputs = {"customer": "", "period": "last-billing-period", "dry_run": False,
                  "as_of": "", "force": False}  # fmt: skip
    plan = _run("sync.yml", "plan", clone, Contexts(github=_github(), inputs=ctx_inputs,
                secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF}), "workflow_dispatch",
                artifacts=clone.parent / "store")  # fmt: skip
    stored = clone.parent / "store" / "sync-plan-4242" / "plan.json"
    data = json.loads(stored.read_text(encoding="utf-8"))
    data["customers"][0]["name"] = "edited after planning"
    stored.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    apply_dir = clone.parent / "apply" / "work"
    _git(clone.parent, "clone", "--quiet", _git(clone, "remote", "get-url", "origin").strip(),
         str(apply_dir))  # fmt: skip
    ctx = Contexts(github=_github(), inputs=ctx_inputs, secrets=sandbox.env(),
                   vars={"RECONCILE_AS_OF": AS_OF},
                   needs={"plan": {"outputs": plan.outputs, "result": "success"}})  # fmt: skip
    apply = _run("sync.yml", "apply", apply_dir, ctx, "workflow_dispatch",
                 artifacts=clone.parent / "store")  # fmt: skip
    assert apply.failed
    assert apply.step("Check the plan is the one planned").code == 1
    assert not apply.step("Apply").ran and sandbox.stats.writes == 0


def test_a_cancelled_apply_job_commits_and_uploads_its_partial_run_log(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    """Issue 26, finding 7: a cancelled (or timed-out) apply's run log reaches the branch,
    not only a 90-day artifact, so the history of what was written stays in git."""
    sandbox.latency_ms = 150  # a slow ConnectWise: the job is cancelled mid-apply
    before = _origin_log(origin)
    result = _sync(
        clone, sandbox, "workflow_dispatch", customer="", period="last-billing-period",
        dry_run=False, as_of="", force=False,
        cancel=Cancel("Apply", lambda: sandbox.stats.writes >= 1),
    )  # fmt: skip
    assert result.apply.cancelled and result.step("Apply").ran
    planned = _planned_changes(clone / "plan.json")
    assert 1 <= sandbox.stats.writes < planned  # really stopped part-way
    assert result.step("Commit the run log").code == 0
    assert _origin_log(origin) == [
        "github-actions[bot]|Sync run log (workflow_dispatch)", *before
    ]  # fmt: skip
    files = _git(origin, "show", "--name-only", "--format=", BRANCH).split()
    (committed,) = [f for f in files if f.endswith("-manual.json")]
    run = json.loads(_git(origin, "show", f"{BRANCH}:{committed}"))
    assert run["outcome"] != "success"  # recorded as not finished, with what it wrote
    assert "runs/INDEX.md" in files
    upload = [s for s in result.apply.steps if s.name.startswith("actions/upload-artifact")]
    assert len(upload) == 1 and upload[0].selected
    (run_file,) = (result.artifacts / "sync-run-4242" / "runs").rglob("*-manual.json")
    assert json.loads(run_file.read_text(encoding="utf-8")) == run
    assert (result.artifacts / "sync-run-4242" / "plan.json").is_file()


def test_an_unsafe_plan_is_applied_only_when_forced_and_the_run_says_so(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    settings = clone / "mappings" / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    strict = text.replace("max_quantity_change_percent: 50", "max_quantity_change_percent: 1")
    strict = strict.replace("min_existing: 10 ", "min_existing: 0  ")
    assert strict.count("max_quantity_change_percent: 1 ") == 1 and "min_existing: 0 " in strict
    settings.write_text(strict, encoding="utf-8")
    _git(clone, "commit", "--quiet", "-am", "tighter safety limits")
    _git(clone, "push", "--quiet", "origin", BRANCH)
    inputs = {"customer": "", "period": "last-billing-period", "dry_run": False, "as_of": ""}

    refused = _sync(clone, sandbox, "workflow_dispatch", **inputs, force=False)
    assert refused.failed and refused.step("Apply").code == 3
    assert sandbox.stats.writes == 0

    _git(clone, "pull", "--quiet")  # the refusal's run log was committed
    forced = _sync(clone, sandbox, "workflow_dispatch", **inputs, force=True)
    assert not forced.failed, [(s.name, s.code, s.stderr[-500:]) for s in forced.steps if s.ran]
    assert sandbox.stats.writes == _planned_changes(clone / "plan.json") > 0
    runs = sorted((forced.apply_dir / "runs").rglob("*-manual.json"))
    last = json.loads(runs[-1].read_text(encoding="utf-8"))
    assert last["outcome"] == "success"
    assert any(w.startswith("applied with --force although the plan is unsafe")
               for w in last["warnings"])  # fmt: skip


NOTIFICATIONS_SECONDS = 150  # the e-mails' and chat's own budget after a run (operations.md)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_sync_step_ends_by_its_own_time_limit_before_the_runner_kills_it(
    path: Path,
) -> None:
    """A step running `reconcile plan` or `apply` must reach `--max-duration` (its env, else
    the 50-minute default) plus the notifications' budget before its step or job
    `timeout-minutes`: then the run ends as a time limit, recorded and said, not killed."""
    from reconciler.net.deadline import max_duration

    checked = 0
    for job in yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"].values():
        for step in job.get("steps", []):
            if not re.search(r"^\s*reconcile (plan|apply)\b", step.get("run", ""), re.M):
                continue
            minutes = step.get("timeout-minutes", job.get("timeout-minutes"))
            assert minutes is not None, f"{path.name}: {step.get('name')} has no time limit"
            env = {k: str(v) for k, v in (step.get("env") or {}).items()}
            limit = max_duration(None, env)
            assert limit + NOTIFICATIONS_SECONDS < minutes * 60, (path.name, step.get("name"))
            checked += 1
    if path.name == "sync.yml":
        assert checked == 2  # Plan and Apply
