"""Issue 26: the trust boundaries between people and jobs (DESIGN 13.6), one test per finding,
through the project's workflow runner (workflow_runner.py) and fake GitHub (fake_github.py).
docs/security.md's threat model names these tests row by row."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import test_workflows
from fake_github import FakeGitHub
from test_workflows import (
    AS_OF,
    BRANCH,
    HEAD_SHA,
    REPO,
    WORKFLOWS,
    _checkout_base,
    _git,
    _github,
    _origin_log,
    _pr_event,
    _run,
    _sync,
)
from workflow_runner import Contexts, load_workflow

from reconciler.config import pin
from reconciler.config.resources import schemas_dir
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.plan import baseline
from reconciler.sandbox import Sandbox

# The workflow tests' fixtures: a bare origin made by `reconcile init`, a clone, the sandbox.
origin, clone, sandbox = test_workflows.origin, test_workflows.clone, test_workflows.sandbox
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
MANUAL = {"customer": "", "period": "last-billing-period", "dry_run": False, "as_of": ""}


class Listener:
    """A host a pull request would like the keys sent to: records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                seen.append(("GET", self.path, self.headers.get("Authorization", "")))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


def _set_api_urls(settings: Path, cw: str, zerotek: str) -> None:
    """The `api_url:` of the connectwise section, then of the zerotek section."""
    text = settings.read_text(encoding="utf-8")
    urls = iter((cw, zerotek))
    text, count = re.subn(r"(?m)^(  api_url: )\S+", lambda m: m.group(1) + next(urls), text)
    assert count == 2 and text.index(cw) < text.index("zerotek:") < text.index(zerotek)
    settings.write_text(text, encoding="utf-8")


# --- finding 1: a pull request cannot send the keys to its own host ------------------------


def test_finding1_a_pull_request_cannot_point_the_plan_at_its_own_host(
    clone: Path, origin: Path, sandbox: Sandbox, listener: Listener
) -> None:
    """The API roots live in settings.yaml (no URL secrets): main points at ConnectWise, the
    pull request at its own host. The plan job reads and posts with the base's roots; the
    pull request's host hears nothing, and the comment says the change applies after merge."""
    settings = clone / "mappings" / "settings.yaml"
    _set_api_urls(settings, sandbox.cw_url, sandbox.zerotek_url)
    _git(clone, "commit", "--quiet", "-am", "API roots in settings.yaml")
    _git(clone, "push", "--quiet", "origin", BRANCH)
    _checkout_base(clone, origin)
    _set_api_urls(settings, listener.url + "/cw", listener.url + "/zt")  # the pull request

    secrets = {k: v for k, v in sandbox.env().items() if not k.endswith("_API_URL")}
    ctx = Contexts(github=_pr_event(), secrets=secrets, vars={"RECONCILE_AS_OF": AS_OF})
    gh = FakeGitHub(repo=REPO).start()
    try:
        plan = _run("validate.yml", "plan", clone, ctx, "pull_request", GITHUB_API_URL=gh.url)
    finally:
        gh.stop()
    assert listener.requests == []  # not one request, so no key, reached the PR's host
    assert not plan.failed, [(s.name, s.stderr[-800:]) for s in plan.steps if s.ran]
    assert sandbox.stats.total > 0 and sandbox.stats.writes == 0
    stderr = plan.step("Plan").stderr
    for key in ("connectwise.api_url", "zerotek.api_url"):
        assert f"warning: mappings/settings.yaml {key}: this pull request changes it" in stderr
    assert "applies after merge" in gh.comments[7][0]["body"]


def test_finding1_environment_variables_still_override_the_base(
    tmp_path: Path, sandbox: Sandbox, listener: Listener
) -> None:
    """CW_API_URL/ZEROTEK_API_URL beat both branches' settings; without a base settings
    file the head's roots are not used either (only the environment can name one)."""
    head, base = tmp_path / "head", tmp_path / "base"
    for where in (head, base):
        subprocess.run([sys.executable, "-m", "reconciler", "init", str(where)],
                       check=True, capture_output=True)  # fmt: skip
    _set_api_urls(head / "mappings/settings.yaml", listener.url + "/cw", listener.url + "/zt")
    env = {"PATH": "/usr/bin:/bin", **_python_env(), **sandbox.env()}

    def plan(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", "--as-of", AS_OF, *args],
            cwd=head, env=environ, capture_output=True, text=True, check=False,
        )  # fmt: skip

    assert plan("--baseline", str(base), environ=env).returncode == 0  # env roots win
    no_urls = {k: v for k, v in env.items() if not k.endswith("_API_URL")}
    first_pr = plan("--baseline", str(tmp_path / "nothing"), environ=no_urls)
    assert first_pr.returncode == 1
    assert "no API URL: set CW_API_URL" in first_pr.stderr
    assert listener.requests == []
    # Without --baseline (a person planning locally) the head's settings are the config.
    plan(environ=no_urls)
    assert listener.requests, "the head's api_url is used when no baseline is given"


def _python_env() -> dict[str, str]:
    import os

    return {k: os.environ[k] for k in ("PYTHONPATH", "HOME") if k in os.environ}


def test_finding1_connection_settings_are_the_only_credential_destinations() -> None:
    """Every settings.yaml key that names where a request goes is taken from the base; SMTP
    and the webhook exist only as environment variables (a new key must join the list)."""
    schema = json.loads((schemas_dir() / "settings.schema.json").read_text(encoding="utf-8"))
    found = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in (node.get("properties") or {}).items():
                name = f"{path}.{key}" if path else key
                if re.search(r"url|host|smtp|webhook|endpoint|server", key, re.I):
                    found.add(name)
                walk(value, name)

    walk(schema, "")
    assert found == {key for _, key in baseline.CONNECTION_SETTINGS}


# --- secrets per job: the environments -------------------------------------------------------

READ_ONLY = {
    "CW_API_URL", "CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY", "CW_CLIENT_ID",
    "ZEROTEK_API_URL", "ZEROTEK_API_TOKEN",
}  # fmt: skip


def _jobs() -> Iterator[tuple[str, str, dict[str, Any], set[str]]]:
    """(workflow, job id, job, secrets the job's text names)."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load_workflow(path)
        for job_id, job in workflow["jobs"].items():
            text = json.dumps(job)
            yield path.name, job_id, job, set(re.findall(r"secrets\.(\w+)", text))


def _setup_commands() -> str:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return "\n".join(b for b in blocks if re.search(r"^gh (api|secret) ", b, re.M))


def _environments() -> dict[str, dict[str, Any]]:
    """What docs/security.md's `gh api ... environments/NAME --input -` commands create,
    with the deployment branches each one is given."""
    commands = _setup_commands()
    found = {}
    put = r'gh api -X PUT "repos/\$REPO/environments/([\w-]+)"(?: --input - <<EOF\n(.*?)\nEOF)?'
    for name, body in re.findall(put, commands, re.S):
        body = re.sub(r"\$\(gh api [^)]*\)", "1", body)  # a user's numeric id
        found[name] = json.loads(body) if body else {}
    branch = r'environments/([\w-]+)/deployment-branch-policies" -f name=(\S+)'
    for name, pattern in re.findall(branch, commands):
        found[name].setdefault("branches", []).append(pattern)
    return found


def _main_only(settings: dict[str, Any]) -> bool:
    policy = settings.get("deployment_branch_policy") or {}
    return policy.get("custom_branch_policies") is True and settings.get("branches") == ["main"]


def test_finding1_pull_request_jobs_reach_only_read_only_keys_and_the_rest_is_main_only() -> None:
    environments = _environments()
    for workflow, job_id, job, secrets in _jobs():
        if workflow == "tests.yml":
            assert not secrets
            continue
        environment = job.get("environment")
        if not secrets:  # e.g. validate.yml's validate job: nothing to reach
            assert environment is None
            continue
        assert environment in environments, f"{workflow}/{job_id}: {environment} not in setup"
        if workflow == "validate.yml":  # runs for pull requests: read-only keys only
            assert secrets <= READ_ONLY, f"{workflow}/{job_id}: {secrets - READ_ONLY}"
            assert environment == "connectwise-read"
        else:  # scheduled or dispatched from main: SMTP, webhook, write keys live here
            assert _main_only(environments[environment]), f"{workflow}/{job_id}: {environment}"
    assert not _main_only(environments["connectwise-read"])  # pull requests must reach it
    # SMTP, the webhook and the deploy key: never at repository level (every branch reads
    # those) nor in the pull requests' environment.
    placed = []
    for line in _setup_commands().splitlines():
        if m := re.match(r"\s*gh secret set (\w+)(.*)", line):
            name, env = m.group(1), re.search(r"--env ([\w-]+)", m.group(2))
            placed.append((name, env.group(1) if env else None))
    assert {"SMTP_PASSWORD", "RECONCILE_WEBHOOK_URL", "RUNLOG_DEPLOY_KEY"} <= {n for n, _ in placed}
    for name, env in placed:
        if name not in READ_ONLY:
            assert env in ("connectwise-main", "connectwise"), (name, env)


# --- finding 2: approvers see force; nobody approves their own forced run --------------------


def test_finding2_force_is_shown_where_the_plan_is_read_and_approved(
    clone: Path, sandbox: Sandbox
) -> None:
    result = _sync(clone, sandbox, "workflow_dispatch", **MANUAL, force=True)
    assert not result.failed, [(s.name, s.stderr[-500:]) for s in result.steps if s.ran]
    summary = result.plan.summary
    assert "**force is on** (started by msp-admin)" in summary
    assert summary.index("force is on") < summary.index("reconcile plan")  # read first
    assert "::warning title=force is on::" in result.plan.step("Plan").stdout
    assert "force is on" in result.apply.summary
    job = load_workflow(WORKFLOWS / "sync.yml")["jobs"]["apply"]
    forced = Contexts(github=_github(), inputs={**MANUAL, "force": True})
    assert "FORCE" in forced.interpolate(job["name"])  # the approval request names it
    assert forced.interpolate(job["name"]) != Contexts(inputs={"force": False}).interpolate(
        job["name"]
    )
    plain = _sync(clone, sandbox, "workflow_dispatch", **MANUAL, force=False)
    assert "force is on" not in plain.summary


def test_finding2_setup_enables_required_reviewers_and_prevent_self_review() -> None:
    apply_env = load_workflow(WORKFLOWS / "sync.yml")["jobs"]["apply"]["environment"]
    settings = _environments()[apply_env]
    assert settings.get("prevent_self_review") is True
    assert settings.get("reviewers") and all(r["type"] in ("User", "Team")
                                             for r in settings["reviewers"])  # fmt: skip
    assert _main_only(settings)


# --- finding 3: a queued scheduled run never applies a period again --------------------------


def test_finding3_a_queued_scheduled_run_does_not_apply_the_period_again(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    """Two scheduled runs triggered at the same commit; the second waited (one concurrency
    group) while the first applied. A clerk's edit made in between must not be reverted by
    the second: its apply job sees the first run's record on the branch tip."""
    first = _sync(clone, sandbox, "schedule")
    assert not first.failed and sandbox.stats.writes > 0
    from world_edits import set_addition_quantity

    writes = sandbox.stats.writes
    applied = json.loads((clone / "plan.json").read_text(encoding="utf-8"))
    updated = [ch["addition_id"] for c in applied["customers"] for ch in c["changes"]
               if ch["action"] == "update"]  # fmt: skip
    target = sandbox.addition(updated[0])
    assert target is not None  # a line the first run set: a clerk now changes it by hand
    set_addition_quantity(sandbox, target["id"], int(target["quantity"]) + 5)
    (clone / "plan.json").unlink()

    queued = _sync(clone, sandbox, "schedule")  # the clone is still at the trigger commit
    assert queued.plan.outputs.get("planned") == "true"  # it planned to revert the edit
    assert not queued.failed, [(s.name, s.stdout[-500:], s.stderr[-500:])
                               for s in queued.steps if s.ran]  # fmt: skip
    assert "already has a successful scheduled sync" in queued.step("Apply").stdout
    assert sandbox.stats.writes == writes  # the clerk's edit stands
    (twin,) = (first.apply_dir / "runs").rglob("*-scheduled.md")
    assert twin.read_text(encoding="utf-8").strip() not in queued.apply.summary  # not its run
    tree = _git(origin, "ls-tree", "-r", "--name-only", BRANCH).split()
    assert len([f for f in tree if f.endswith("-scheduled.json")]) == 1


def test_finding3_apply_if_due_refuses_an_applied_period_before_any_request(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    repo = tmp_path / "config"
    subprocess.run([sys.executable, "-m", "reconciler", "init", str(repo)], check=True,
                   capture_output=True)  # fmt: skip
    env = {
        "PATH": "/usr/bin:/bin",
        **_python_env(),
        **sandbox.env(),
        "GITHUB_EVENT_NAME": "schedule",
    }

    def reconcile(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=repo, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip

    assert reconcile("plan", "--as-of", "2026-11-20", "--out", "plan.json").returncode == 0
    first = reconcile("apply", "plan.json", "--yes", "--if-due")  # not applied yet: applies
    assert first.returncode == 0, first.stderr
    requests, runs = sandbox.stats.total, sorted((repo / "runs").rglob("*.json"))
    again = reconcile("apply", "plan.json", "--yes", "--if-due")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("not applied: period 2026-10-16..2026-11-15 already has")
    assert sandbox.stats.total == requests  # refused before any request
    assert sorted((repo / "runs").rglob("*.json")) == runs  # and nothing recorded


# --- finding 4: nobody can take over the plan comment ---------------------------------------


def test_finding4_the_plan_comment_is_only_ever_our_own(clone: Path, sandbox: Sandbox) -> None:
    gh = FakeGitHub(repo=REPO).start()
    try:
        planted = gh.add_comment(7, f"{PLAN_MARKER}\nLooks fine, merge it.", "mallory")
        ctx = Contexts(github=_pr_event(), secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF})
        for _ in range(2):
            plan = _run("validate.yml", "plan", clone, ctx, "pull_request", GITHUB_API_URL=gh.url)
            assert not plan.failed, [(s.name, s.stderr[-500:]) for s in plan.steps if s.ran]
    finally:
        gh.stop()
    assert gh.comments[7][0] == planted and planted["body"].endswith("merge it.")
    assert [p.path for p in gh.calls("PATCH")] == [
        f"/repos/{REPO}/issues/comments/{gh.comments[7][1]['id']}"
    ]
    ours = gh.comments[7][1]
    assert ours["user"]["login"] == "github-actions[bot]" and len(gh.comments[7]) == 2
    # What the comment is of, from where, and when.
    stamp = ours["body"].splitlines()[1]
    assert f"`{HEAD_SHA[:12]}`" in stamp
    assert "[workflow run](https://github.example/msp/billing-config/actions/runs/4242)" in stamp
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", stamp)


# --- finding 5: a protected main is named as such, with the fix -------------------------------


def test_finding5_a_protected_branch_is_named_not_mistaken_for_a_moved_one(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'error: GH006: Protected branch update failed for refs/heads/main.' >&2\n"
        "echo 'error: Changes must be made through a pull request.' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    result = _sync(clone, sandbox, "schedule")
    commit = result.step("Commit the run log")
    assert commit.code == 1 and sandbox.stats.writes > 0
    assert "the branch moved" not in commit.stdout and "attempt 2" not in commit.stdout
    assert "::error title=Run log not pushed: main is protected::" in commit.stdout
    assert "sync-run-4242" in commit.stdout and "docs/security.md" in commit.stdout
    assert (result.artifacts / "sync-run-4242" / "runs").is_dir()
    # The next day the period is still due (no record on main), but the converged plan
    # has nothing to apply: nobody is asked to approve it again.
    (clone / "plan.json").unlink()
    again = _sync(clone, sandbox, "schedule", as_of="2026-11-21")
    assert not again.failed and again.plan.outputs.get("changes") == "0"
    assert not again.step("Apply").ran and not again.apply.steps[0].selected


def test_finding5_the_fix_a_deploy_key_only_the_apply_job_holds_gets_the_run_log_through(
    clone: Path, origin: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    """docs/security.md's fix: main stays protected (HTTPS pushes refused), and the ruleset
    lets deploy keys through. The commit step pushes over SSH with RUNLOG_DEPLOY_KEY, with
    GitHub's host key pinned. `ssh` here is a stand-in that checks what git hands it and
    runs git-receive-pack on the local origin, marked as the deploy key's push."""
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        '#!/bin/sh\n[ "$DEPLOY_KEY_PUSH" = yes ] && exit 0\n'
        "echo 'error: GH013: Repository rule violations found for refs/heads/main.' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    seen = tmp_path / "ssh-args"
    (fake / "ssh").write_text(
        "#!/bin/bash\nset -eu\n"
        f'printf "%s\\n" "$@" > {seen}\n'
        'key=""; hosts=""\n'
        'while [ $# -gt 2 ]; do case "$1" in -i) key=$2; shift 2;; '
        '-o) case "$2" in UserKnownHostsFile=*) hosts=${2#*=};; esac; shift 2;; '
        "*) shift;; esac; done\n"
        '[ "$1" = git@github.com ] || { echo "bad host $1" >&2; exit 9; }\n'
        '[ "$(cat "$key")" = "$EXPECTED_KEY" ] || { echo "bad key" >&2; exit 9; }\n'
        'grep -q "^github.com ssh-ed25519 " "$hosts" || { echo "no pinned host" >&2; exit 9; }\n'
        'case "$2" in *"msp/billing-config.git"*) ;; *) echo "bad repo $2" >&2; exit 9;; esac\n'
        f"DEPLOY_KEY_PUSH=yes exec git-receive-pack {origin}\n"
    )
    (fake / "ssh").chmod(0o755)
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"
    path = f"{fake}:{runner_path()}"
    result = _sync(clone, sandbox, "schedule", secrets={"RUNLOG_DEPLOY_KEY": key},
                   runner={"PATH": path, "EXPECTED_KEY": key})  # fmt: skip
    commit = result.step("Commit the run log")
    assert commit.code == 0, commit.stdout + commit.stderr
    assert _origin_log(origin)[0] == "github-actions[bot]|Sync run log (schedule)"
    assert "StrictHostKeyChecking=yes" in seen.read_text()
    assert key not in commit.stdout + commit.stderr


def runner_path() -> str:
    import os

    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


# --- finding 6: workflow and lock changes are validated; upgrades are one command ------------


@pytest.mark.parametrize(
    "changed",
    [".github/workflows/sync.yml", "requirements/locked.txt", "state/managed.json",
     "mappings/customers.yaml"],
)  # fmt: skip
def test_finding6_validate_runs_for_workflow_lock_and_state_changes(changed: str) -> None:
    paths = load_workflow(WORKFLOWS / "validate.yml")["on"]["pull_request"]["paths"]
    # GitHub's `**` matches across directories, as fnmatch's `*` does.
    assert any(fnmatch.fnmatchcase(changed, p) for p in paths), paths


def test_finding6_init_upgrade_rewrites_the_generated_files_and_prints_the_diff(
    tmp_path: Path,
) -> None:
    old_pin = f"git+https://github.com/msp/zerotek-cw-reconciler@{'a' * 40}"
    repo = tmp_path / "billing-config"

    def reconcile(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                              text=True, check=False)  # fmt: skip

    assert reconcile("init", str(repo), "--pin", old_pin).returncode == 0
    fresh = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    sync, lock = repo / ".github/workflows/sync.yml", repo / "requirements/locked.txt"
    older = sync.read_text().replace("        if: always()\n", "", 1)
    assert older != sync.read_text()
    sync.write_text(older)
    lock.write_text("# an older lock\n")
    (repo / "mappings/customers.yaml").write_text("# the MSP's own, never touched\n")

    upgraded = reconcile("init", str(repo), "--upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "+++ b/.github/workflows/sync.yml" in upgraded.stdout
    assert "+        if: always()" in upgraded.stdout
    assert "-# an older lock" in upgraded.stdout
    assert sync.read_bytes() == fresh[Path(".github/workflows/sync.yml")]  # pin kept
    assert lock.read_bytes() == fresh[Path("requirements/locked.txt")]
    assert (repo / "mappings/customers.yaml").read_text() == "# the MSP's own, never touched\n"

    again = reconcile("init", str(repo), "--upgrade")
    assert again.returncode == 0 and again.stdout == ""
    assert "nothing changed" in again.stderr

    new_pin = f"git+https://github.com/msp/zerotek-cw-reconciler@{'b' * 40}"
    repinned = reconcile("init", str(repo), "--upgrade", "--pin", new_pin)
    assert repinned.returncode == 0
    assert "+        run: |\n" not in repinned.stdout  # only the install lines change
    for name in ("validate.yml", "sync.yml", "unmapped.yml"):
        text = (repo / ".github/workflows" / name).read_text()
        assert pin.parse_pin(new_pin).install_command() in text and old_pin not in text


def test_finding6_upgrade_outside_a_config_repository_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "reconciler", "init", str(tmp_path),
                           "--upgrade"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no mappings/settings.yaml here" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# --- finding 7: no approval for nothing; a forgotten RECONCILE_AS_OF is loud -----------------


def test_finding7_a_plan_without_changes_ends_without_an_apply_job(
    clone: Path, origin: Path, sandbox: Sandbox
) -> None:
    first = _sync(clone, sandbox, "workflow_dispatch", **MANUAL, force=False)
    assert not first.failed and sandbox.stats.writes > 0
    writes, log = sandbox.stats.writes, _origin_log(origin)
    converged = _sync(clone, sandbox, "workflow_dispatch", **MANUAL, force=False)
    assert not converged.failed
    assert converged.plan.outputs.get("changes") == "0"
    assert converged.plan.outputs.get("planned", "") == ""
    assert not any(s.selected for s in converged.apply.steps)  # no job, no approval
    assert "No changes to apply" in converged.summary
    assert sandbox.stats.writes == writes and _origin_log(origin) == log


def test_finding7_a_scheduled_run_warns_when_reconcile_as_of_is_set(
    clone: Path, sandbox: Sandbox
) -> None:
    scheduled = _sync(clone, sandbox, "schedule")  # vars.RECONCILE_AS_OF is set
    assert "::warning title=RECONCILE_AS_OF is set::" in scheduled.plan.step("Plan").stdout
    assert "RECONCILE_AS_OF" in scheduled.plan.summary
    (clone / "plan.json").unlink()
    manual = _sync(clone, sandbox, "workflow_dispatch", **MANUAL, force=False)
    assert "RECONCILE_AS_OF is set" not in manual.plan.step("Plan").stdout  # meant there
    ctx = Contexts(github=_github(), secrets=sandbox.env(), vars={"RECONCILE_AS_OF": AS_OF})
    unmapped = _run("unmapped.yml", "check-unmapped", clone, ctx, "schedule")
    assert "::warning title=RECONCILE_AS_OF is set::" in unmapped.stdout


# --- the threat model names a test for every row --------------------------------------------


def test_the_threat_model_names_tests_that_exist() -> None:
    text = DOCS.read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_\w+)`", text))
    assert len(named) >= 10
    here = Path(__file__).parents[1]
    defined = {
        m
        for p in here.rglob("test_*.py")
        for m in re.findall(r"^def (test_\w+)", p.read_text(encoding="utf-8"), re.M)
    }
    assert named <= defined, named - defined
