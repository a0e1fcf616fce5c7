"""The conventions users bring from other CLIs (issue 17): -h, completion, env vars in help,
colour rules, examples, workflow order, 80-column help, and clear one-line errors."""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import clirun
import pytest
import typer
import world_edits
from typer.main import get_command

from reconciler.cli import app
from reconciler.cli.application import WORKFLOW_ORDER
from reconciler.cli.help import EXAMPLES
from reconciler.sandbox import Sandbox

GROUP = get_command(app)
COMMANDS = [name for name, cmd in GROUP.commands.items() if not cmd.hidden]  # type: ignore[attr-defined]
AS_OF = ["--as-of", "2026-11-24"]


def invoke(*args: str, env: dict[str, str] | None = None, width: int = 80):
    return clirun.invoke(*args, env=env, width=width)


def _on_a_tty(args: list[str], env: dict[str, str]) -> bytes:
    """Run the CLI with stdout on a pseudo-terminal; what the terminal received."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args], stdout=follower, stderr=subprocess.DEVNULL,
        env=env,
    ):  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    os.close(leader)
    return seen


# --- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_dash_h_is_help_and_help_fits_80_columns(command: str | None) -> None:
    args = [command] if command else []
    long, short = invoke(*args, "--help"), invoke(*args, "-h")
    assert long.exit_code == short.exit_code == 0
    assert long.stdout == short.stdout
    assert max(len(line) for line in long.stdout.splitlines()) <= 80
    if command is None:  # command summaries are whole sentences, never cut with "..."
        listing = long.stdout.split("Commands:")[1]
        assert "..." not in listing and "…" not in listing


def test_commands_are_listed_in_workflow_order_with_whole_summaries() -> None:
    text = invoke("--help").stdout.split("Commands:")[1]
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("  ") and
              not line.startswith("   ")]  # fmt: skip
    known = [n for n in WORKFLOW_ORDER if n in listed]
    assert listed[: len(known)] == known
    assert listed.index("validate") < listed.index("plan") < listed.index("apply")
    assert listed.index("apply") < listed.index("show") < listed.index("activity")


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_every_command_has_examples_that_parse(command: str) -> None:
    assert EXAMPLES.get(command), f"add examples for `{command}` to reconciler/cli_help.py"
    help_text = invoke(*([command] if command else []), "--help").stdout
    assert "Examples:" in help_text
    for line, _ in EXAMPLES[command]:
        words = shlex.split(line.split("|")[0].split(">")[0])
        assert words[0] == "reconcile"
        assert f"$ {line}" in help_text
        # parse (never run) the example against the real command: options and choices exist
        root = GROUP.make_context("reconcile", words[1:], resilient_parsing=False)  # type: ignore[attr-defined]
        rest = words[1:]
        while rest and rest[0].startswith("-"):  # global options before the command
            rest = rest[2:] if rest[0] == "--config-dir" else rest[1:]
        sub = GROUP.commands[rest[0]]  # type: ignore[attr-defined]
        try:
            sub.make_context(rest[0], rest[1:], parent=root).close()
        except typer.Exit as done:  # `-h`: prints help and exits 0
            assert done.exit_code == 0
        root.close()


def test_every_option_reads_an_environment_variable_shown_in_help() -> None:
    invoke("--help")  # the group sets them up when it makes its context
    skip = {"help", "version", "install_completion", "show_completion"}
    for name, command in [(None, GROUP), *GROUP.commands.items()]:  # type: ignore[attr-defined]
        if command.hidden:
            continue
        help_text = " ".join(invoke(*([name] if name else []), "--help").stdout.split())
        for param in command.params:
            if param.param_type_name != "option" or param.name in skip:
                continue
            if param.name == "config_dir":  # before or after the command: read by hand
                assert "[env var: RECONCILE_CONFIG_DIR]" in help_text
                continue
            assert param.envvar and str(param.envvar).startswith("RECONCILE_"), (name, param.name)
            assert f"env var: {param.envvar}" in help_text, (name, param.name)


def test_an_environment_variable_sets_its_option(tmp_path: Path) -> None:
    result = invoke(
        "validate", "--config-dir", str(tmp_path), env={"RECONCILE_VALIDATE_FORMAT": "json"}
    )
    assert result.exit_code == 1 and result.stdout.lstrip().startswith("{")


def test_shell_completion_is_enabled() -> None:
    assert "--install-completion" in invoke("--help").stdout
    env = {**os.environ, "_RECONCILE_COMPLETE": "complete_bash", "COMP_WORDS": "reconcile pl",
           "COMP_CWORD": "1"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "reconciler"], env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.stdout.split() == ["plan"]


def test_a_wrong_choice_lists_the_choices_plainly(tmp_path: Path) -> None:
    result = invoke("plan", "--period", "monthly", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "'monthly' is not a choice; use one of: last-billing-period, current" in result.stderr
    assert "Value error" not in result.stderr


# --- colour -------------------------------------------------------------------------------


def test_colour_on_a_tty_unless_no_color_and_the_flags_override(
    sandbox: Sandbox, config_dir: Path
) -> None:
    base = {**os.environ, "TERM": "xterm"}
    base.pop("NO_COLOR", None)
    plan = ["--config-dir", str(config_dir), "plan", *AS_OF]
    assert b"\x1b[" in _on_a_tty(plan, base)
    # The same rule for every command (cli/term.py): the variants on `show` of a saved plan,
    # which starts in half the CPU of `plan` (no HTTP client, no requests).
    saved = str(config_dir / "plan.json")
    assert invoke(*plan, "--out", saved).exit_code == 0
    show = ["--config-dir", str(config_dir), "show", saved]
    assert b"\x1b[" in _on_a_tty(show, base)
    assert b"\x1b[" not in _on_a_tty(show, {**base, "NO_COLOR": "1"})
    assert b"\x1b[" not in _on_a_tty(["--no-color", *show], base)
    assert b"\x1b[" in _on_a_tty(["--color", *show], {**base, "NO_COLOR": "1"})
    piped = invoke("--config-dir", str(config_dir), "plan", *AS_OF)
    assert "\x1b[" not in piped.stdout
    forced = invoke("--color", "--config-dir", str(config_dir), "plan", *AS_OF)
    assert "\x1b[" in forced.stdout


# --- show -----------------------------------------------------------------------------------


def test_show_re_renders_a_saved_plan_like_plan_did(sandbox: Sandbox, config_dir: Path) -> None:
    saved = config_dir / "plan.json"
    for fmt in ("text", "markdown", "json"):
        planned = invoke("--config-dir", str(config_dir), "plan", "--out", str(saved),
                         "--format", fmt, *AS_OF)  # fmt: skip
        writes = sandbox.stats.total
        shown = invoke("show", str(saved), "--format", fmt)
        assert shown.exit_code == 0 and sandbox.stats.total == writes  # no request at all
        if fmt == "json":
            assert json.loads(shown.stdout)["customers"] == json.loads(planned.stdout)["customers"]
        else:
            assert shown.stdout == planned.stdout
    missing = invoke("show", str(config_dir))
    assert missing.exit_code == 1
    assert missing.stderr.splitlines() == [f"error: {config_dir}: is a directory, not a plan file"]


# --- plan's verdict -----------------------------------------------------------------------


def test_plan_never_says_no_changes_when_a_customer_errored(
    sandbox: Sandbox, config_dir: Path
) -> None:
    assert (
        invoke("--config-dir", str(config_dir), "apply", "--yes", "--no-email", *AS_OF).exit_code
        == 0
    )
    world_edits.update_agreement(sandbox, 1003, agreementStatus="Cancelled", cancelledFlag=True)
    result = invoke("--config-dir", str(config_dir), "plan", *AS_OF)
    assert result.exit_code == 1
    assert "ConnectWise matches ZeroTek usage" not in result.stdout
    assert "could not be planned" in result.stdout
    markdown = invoke("--config-dir", str(config_dir), "plan", "--format", "markdown", *AS_OF)
    assert "matches ZeroTek usage" not in markdown.stdout


# --- one-line errors ----------------------------------------------------------------------


def test_activity_of_a_missing_config_dir_is_an_error(tmp_path: Path) -> None:
    result = invoke("activity", "--config-dir", str(tmp_path / "nonexistent"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: config directory {tmp_path / 'nonexistent'} does not exist (pass --config-dir)"
    ]
    empty = invoke("activity", "--config-dir", str(tmp_path))
    assert empty.exit_code == 1 and "not a config directory" in empty.stderr


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (".", "is a directory; give a file name such as plan.json"),
        ("sub", "is a directory; give a file name such as plan.json"),
        ("afile/plan.json", "afile is a file, not a directory"),
        ("afile/deeper/plan.json", "afile is a file, not a directory"),
    ],
)
def test_bad_out_paths_are_one_line_errors_before_any_work(
    tmp_path: Path, config_dir: Path, out: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "afile").write_text("x")
    # no sandbox and no credentials: the path is checked before anything is read
    result = invoke("--config-dir", str(config_dir), "plan", "--out", out, *AS_OF)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: --out {out}: {message}"]


# --- activate / deactivate ----------------------------------------------------------------


def test_deactivate_edits_a_symlinked_settings_file_through_the_link(config_dir: Path) -> None:
    settings = config_dir / "mappings" / "settings.yaml"
    real = config_dir / "shared-settings.yaml"
    settings.rename(real)
    settings.symlink_to(Path("..") / real.name)
    assert invoke("--config-dir", str(config_dir), "deactivate").exit_code == 0
    assert settings.is_symlink()
    assert "\nenabled: false" in real.read_text()


@pytest.mark.parametrize("line", ["enabled: *on", "enabled: &on true"])
def test_activate_refuses_an_anchor_or_alias_and_changes_nothing(
    config_dir: Path, line: str
) -> None:
    settings = config_dir / "mappings" / "settings.yaml"
    text = settings.read_text()
    lines = text.splitlines(keepends=True)
    edited = "".join(
        ("anchor: &on true\n" + f"{line}\n") if ln.startswith("enabled:") else ln for ln in lines
    )
    if "&on true\nenabled: &on" in edited:  # only one anchor named `on`
        edited = edited.replace("anchor: &on true\n", "anchor: false\n")
    settings.write_text(edited)
    result = invoke("--config-dir", str(config_dir), "deactivate")
    assert result.exit_code == 1
    assert "enabled: uses a YAML anchor or alias" in result.stderr
    assert settings.read_text() == edited


# --- demo and sandbox ---------------------------------------------------------------------


def test_demo_takes_config_dir_and_every_path_it_prints_exists(tmp_path: Path) -> None:
    target = tmp_path / "tour"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CW_", "ZEROTEK_", "SMTP_"))}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--config-dir", str(target), "demo"],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = [line.split(": ", 1)[1] for line in done.stdout.splitlines()
                if line.startswith("Run recorded: ")]  # fmt: skip
    assert recorded and all(Path(p).exists() for p in recorded)
    assert Path(recorded[0]).is_relative_to(target)
    again = subprocess.run(
        [sys.executable, "-m", "reconciler", "demo", "--config-dir", str(target)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert again.returncode == 1 and "already exists" in again.stderr  # never overwrites


def test_sandbox_takes_config_dir_and_names_it_in_its_hint(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--config-dir", str(tmp_path), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        hint = proc.stderr.readline()
        proc.terminate()
        proc.wait(timeout=30)
    assert f"reconcile --config-dir {tmp_path} plan" in hint
    assert f"reconcile init {tmp_path}" in hint  # no mappings there yet


# --- start-up cost ------------------------------------------------------------------------

# (pydantic is not listed: typer itself imports it to build a command's options.)
HEAVY = {"deepdiff", "httpx", "jsonschema", "fastjsonschema", "asyncio", "rapidfuzz", "yaml",
         "smtplib", "ssl"}  # fmt: skip


@pytest.mark.parametrize("args", [["--help"], ["plan", "--help"], ["--version"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    """benchmarks/import_time.py measures the time; this keeps the cause from coming back."""
    code = (
        "import sys\nfrom reconciler.cli.commands import main\n"
        f"sys.argv = ['reconcile', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stderr.split())
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_the_cli_default_confidence_is_discovers() -> None:
    from reconciler.cli import insight_commands
    from reconciler.insight import discover

    assert insight_commands.DEFAULT_MIN_CONFIDENCE == discover.DEFAULT_MIN_CONFIDENCE


# --- -v / --debug -------------------------------------------------------------------------


def test_verbose_logs_retries_and_debug_every_request(sandbox: Sandbox, config_dir: Path) -> None:
    sandbox.configure_faults(error_429=0.3, error_500=0.1, retry_after=0, seed=3)
    plan = [sys.executable, "-m", "reconciler", "--config-dir", str(config_dir)]

    def stderr(*flags: str) -> str:
        done = subprocess.run([*plan[:3], *flags, *plan[3:], "plan", *AS_OF],
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    quiet, verbose, debug = stderr(), stderr("-v"), stderr("--debug")
    assert "retry" not in quiet
    assert "INFO reconciler.net.http: ConnectWise GET" in verbose
    # A 429 waits out the shared pause (DESIGN 13.9); other failures count their retries.
    assert (
        "429; retry after the pause" in verbose and "500" in verbose and "; retry 1 in" in verbose
    )
    assert "-> 200 in" not in verbose
    assert "DEBUG reconciler.net.http: ConnectWise GET /company/companies -> 200 in" in debug
    for secret in (sandbox.private_key, sandbox.public_key, sandbox.zerotek_token):
        assert secret not in debug


def test_status_json_follows_its_schema(sandbox: Sandbox, config_dir: Path) -> None:
    import jsonschema

    from reconciler.config.resources import load_schema

    result = invoke("--config-dir", str(config_dir), "status", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, load_schema("status"))
    assert data["ok"] is True and data["state"] == "active"
    assert {c["name"] for c in data["checks"] if c["ok"]} == {c["name"] for c in data["checks"]}
    broken = invoke("--config-dir", str(config_dir / "nowhere"), "status", "--format", "json")
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["ok"] is False
    assert invoke("schema", "status").stdout.startswith("{")
