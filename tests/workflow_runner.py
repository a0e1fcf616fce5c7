"""Run a GitHub Actions job's `run:` steps locally, the way the runner would.

Enough of the runner for our own workflows: `${{ }}` expressions over the contexts the test
provides (github, inputs, secrets, vars, steps), step and job `if:` with the implicit
`success()`, env merged workflow -> job -> step, `bash --noprofile --norc -eo pipefail` (what
`shell: bash` means), and the files GitHub provides (GITHUB_OUTPUT, GITHUB_ENV,
GITHUB_STEP_SUMMARY). `uses:` steps are recorded, not run, except upload-artifact and
download-artifact, which copy files to and from a directory standing in for the run's
artifact store (so a two-job workflow passes its plan between jobs as on GitHub). A step can
be cancelled while it runs, as GitHub cancels a job: SIGINT to its process group (SIGTERM
7.5 s later), then only steps whose `if:` holds with cancelled() true still run. An
expression naming a context this runner does not know is an error, so a typo in a workflow
fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))"
)
_CONTEXTS = ("github", "inputs", "secrets", "vars", "steps", "env", "needs")
_STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load_workflow(path: Path) -> dict[str, Any]:
    # BaseLoader: `on:` stays the string "on" (YAML 1.1 would make it True) and every scalar
    # stays text, as GitHub reads it.
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool | int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip() or 0)
        except ValueError:
            return float("nan")
    return float("nan")


def _loose_eq(a: Any, b: Any) -> bool:
    """GitHub's `==`: strings compare case-insensitively; values of different types are
    compared as numbers (null -> 0, '' -> 0, 'abc' -> NaN), so `null == ''` is true."""
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b) or (isinstance(a, dict | list) and isinstance(b, dict | list)):
        return a is b if isinstance(a, dict | list) else a == b
    return _number(a) == _number(b)


class _Value:
    """An expression operand with GitHub's truthiness and equality (`&&`/`||` return one)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __bool__(self) -> bool:
        v = self.v
        if isinstance(v, bool):
            return v
        if isinstance(v, int | float):
            return v == v and v != 0  # NaN and 0 are falsy
        return v is not None and v != ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Value) and _loose_eq(self.v, other.v)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Contexts:
    github: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    needs: dict[str, Any] = field(default_factory=dict)
    job_failed: bool = False
    job_cancelled: bool = False

    def lookup(self, dotted: str) -> Any:
        head, *rest = dotted.split(".")
        if head not in _CONTEXTS:
            raise ValueError(f"unknown context {head!r} in expression")
        value: Any = getattr(self, head)
        for part in rest:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def evaluate(self, expression: str) -> Any:
        functions: dict[str, Callable[[], _Value]] = {
            "success": lambda: _Value(not self.job_failed and not self.job_cancelled),
            "failure": lambda: _Value(self.job_failed and not self.job_cancelled),
            "always": lambda: _Value(True),
            "cancelled": lambda: _Value(self.job_cancelled),
        }
        python: list[str] = []
        values: list[Any] = []
        pos = 0
        expression = expression.strip()
        while pos < len(expression):
            m = _TOKEN.match(expression, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot parse expression {expression!r} at {pos}")
            pos = m.end()
            if m["op"] is not None:
                python.append({"&&": " and ", "||": " or ", "!": " not "}.get(m["op"], m["op"]))
                continue
            name = m["ident"]
            if m["str"] is not None:
                value: Any = m["str"][1:-1].replace("''", "'")
            elif m["num"] is not None:
                value = float(m["num"])
            elif name in ("true", "false", "null"):
                value = {"true": True, "false": False, "null": None}[name]
            elif name in _STATUS_FUNCTIONS and expression[pos:].lstrip().startswith("("):
                python.append(f"_f[{name!r}]")
                continue
            else:
                value = self.lookup(name)
            values.append(_Value(value))
            python.append(f"_v[{len(values) - 1}]")
        result = eval("".join(python), {"__builtins__": {}}, {"_v": values, "_f": functions})
        return result.v if isinstance(result, _Value) else result

    def interpolate(self, text: str) -> str:
        return _EXPR.sub(lambda m: as_text(self.evaluate(m.group(1))), text)

    def condition(self, raw: str | None) -> bool:
        """A step's or job's `if:`; success() is implied unless a status function is used."""
        expression = (raw or "success()").strip()
        whole = re.fullmatch(r"\$\{\{(.*)\}\}", expression, re.S)
        if whole:
            expression = whole.group(1)
        if not any(re.search(rf"\b{f}\s*\(", expression) for f in _STATUS_FUNCTIONS):
            expression = f"success() && ({expression})"
        return bool(self.evaluate(expression))


@dataclass
class StepResult:
    name: str
    ran: bool
    code: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    selected: bool = False  # its `if:` held (a `uses:` step then counts as having run)


@dataclass
class JobResult:
    steps: list[StepResult]
    summary: str
    failed: bool
    cancelled: bool = False
    outputs: dict[str, str] = field(default_factory=dict)  # the job's `outputs:`

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step named {name!r}: {[s.name for s in self.steps]}")

    @property
    def stdout(self) -> str:
        return "".join(s.stdout for s in self.steps)


def _parse_file_commands(path: Path) -> dict[str, str]:
    """`key=value` lines and `key<<DELIM` ... `DELIM` blocks, as GITHUB_OUTPUT/ENV hold."""
    result: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            result[key] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if line:
            key, _, value = line.partition("=")
            result[key] = value
        i += 1
    return result


def _step_name(step: Mapping[str, Any], index: int) -> str:
    return str(step.get("name") or step.get("uses") or step.get("id") or f"step {index}")


@dataclass
class Cancel:
    """Cancel the job while step `step` runs, once `when()` is true (polled every 20 ms)."""

    step: str
    when: Callable[[], bool]


def _transfer_artifact(
    step: Mapping[str, Any], ctx: Contexts, workdir: Path, artifacts: Path
) -> None:
    uses, given = str(step["uses"]), step.get("with") or {}
    name = ctx.interpolate(str(given.get("name", "artifact")))
    store = artifacts / name
    if uses.startswith("actions/upload-artifact@"):
        for pattern in ctx.interpolate(str(given.get("path", ""))).split():
            source = workdir / pattern
            target = store / pattern
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    elif uses.startswith("actions/download-artifact@"):
        if not store.is_dir():
            raise FileNotFoundError(f"artifact {name!r} was never uploaded")
        dest = workdir / ctx.interpolate(str(given.get("path", ".")))
        shutil.copytree(store, dest, dirs_exist_ok=True)


def _run_script(
    script: Path, cwd: Path, env: dict[str, str], timeout: float, cancel: Cancel | None
) -> tuple[int, str, str, bool]:
    """(exit code, stdout, stderr, cancelled)."""
    proc = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    if cancel is None:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, False
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not cancel.when():
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"{script} still running after {timeout} s")
        time.sleep(0.02)
    cancelled = proc.poll() is None
    if cancelled:  # what the runner does on cancel: SIGINT, then SIGTERM after 7.5 s
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=7.5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, True
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err, False


def run_job(
    workflow: Mapping[str, Any],
    job_id: str,
    ctx: Contexts,
    workdir: Path,
    base_env: Mapping[str, str],
    *,
    skip: Callable[[str], bool] = lambda name: False,
    timeout: float = 120,
    artifacts: Path | None = None,
    cancel: Cancel | None = None,
) -> JobResult:
    """Run `job_id`'s steps in `workdir`; steps whose name `skip` accepts count as passed."""
    job = workflow["jobs"][job_id]
    files = workdir.parent / f".runner-{job_id}"
    files.mkdir(exist_ok=True)
    summary_parts: list[str] = []
    results: list[StepResult] = []
    ctx.steps, ctx.job_failed, ctx.job_cancelled = {}, False, False
    extra_env: dict[str, str] = {}
    for index, step in enumerate(job.get("steps", [])):
        name = _step_name(step, index)
        if not ctx.condition(step.get("if")):
            results.append(StepResult(name, ran=False))
            _record(ctx, step, "skipped", {})
            continue
        if "uses" in step or skip(name):
            if "uses" in step and artifacts is not None:
                _transfer_artifact(step, ctx, workdir, artifacts)
            results.append(StepResult(name, ran=False, selected=True))
            _record(ctx, step, "success", {})
            continue
        output, env_file, summary = (files / f"{index}.{k}" for k in ("out", "env", "summary"))
        for stale in (output, env_file, summary):  # a job run twice starts with empty files
            stale.unlink(missing_ok=True)
        env = {**base_env, **extra_env}
        for scope in (workflow.get("env"), job.get("env"), step.get("env")):
            ctx.env = dict(env)
            env.update({k: ctx.interpolate(v) for k, v in (scope or {}).items()})
        env.update(GITHUB_OUTPUT=str(output), GITHUB_ENV=str(env_file))
        env["GITHUB_STEP_SUMMARY"] = str(summary)
        script = files / f"{index}.sh"
        script.write_text(ctx.interpolate(step["run"]), encoding="utf-8")
        cwd = workdir / step.get("working-directory", "")
        this_cancel = cancel if cancel is not None and cancel.step == name else None
        code, out, err, cancelled = _run_script(script, cwd, env, timeout, this_cancel)
        outputs = _parse_file_commands(output)
        extra_env.update(_parse_file_commands(env_file))
        if summary.exists():
            summary_parts.append(summary.read_text(encoding="utf-8"))
        results.append(StepResult(name, True, code, out, err, outputs, selected=True))
        ok = code == 0 or step.get("continue-on-error") == "true"
        _record(ctx, step, "cancelled" if cancelled else "success" if code == 0 else "failure",
                outputs)  # fmt: skip
        if cancelled:
            ctx.job_cancelled = True
        elif not ok:
            ctx.job_failed = True
    outputs = {k: ctx.interpolate(v) for k, v in (job.get("outputs") or {}).items()}
    return JobResult(
        results, "".join(summary_parts), ctx.job_failed or ctx.job_cancelled, ctx.job_cancelled,
        outputs,
    )  # fmt: skip


def skipped_job(workflow: Mapping[str, Any], job_id: str) -> JobResult:
    """A job whose `if:` was false: every step listed, none run."""
    steps = workflow["jobs"][job_id].get("steps", [])
    return JobResult([StepResult(_step_name(s, i), ran=False) for i, s in enumerate(steps)],
                     "", failed=False)  # fmt: skip


def _record(ctx: Contexts, step: Mapping[str, Any], outcome: str, outputs: dict[str, str]) -> None:
    if "id" in step:
        ctx.steps[step["id"]] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}


def runner_env(home: Path, **github: str) -> dict[str, str]:
    """A clean environment: this interpreter's tools first on PATH, a private HOME (no user
    git config), and the GITHUB_* variables the runner sets (not inherited from this shell)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUTF8": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
    }
    # The code under test, not whatever copy the interpreter has installed (a worktree
    # running against an editable install of another checkout would test that checkout).
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(github)
    return env
