"""`reconcile validate / init / activate / deactivate` as users run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import clirun
import pytest
from typer.testing import Result

from reconciler.config.resources import example_dir

SETTINGS = """\
enabled: true
connectwise:
  api_url: https://cw.example/v4_6_release/apis/3.0
zerotek:
  api_url: https://zt.example/
billing:
  sync_day: 15
  timezone: UTC
notifications:
  administrators: [ops@msp.example]
"""
SKUS = """\
- sku: OKTA-SSO
  product: ZT-OKTA-SSO
- sku: OKTA-MFA
  product: ZT-OKTA-MFA
  unit_price: 3.00
"""
CUSTOMERS = """\
- id: zt-0001
  name: Acme Corp
  company: ACME
  agreement: Acme Managed Services
- id: zt-0002
  name: Globex
  company: GLOBEX
  agreement: 1006
  exclude_skus: [OKTA-MFA]
"""
BASE = {
    "mappings/settings.yaml": SETTINGS.encode(),
    "mappings/skus.yaml": SKUS.encode(),
    "mappings/customers.yaml": CUSTOMERS.encode(),
}


def invalid(count: int, config_dir: Path | None = None) -> str:
    """validate's last line: `error:`, and what to run next, keeping --config-dir (issue 28)."""
    where = f" --config-dir {config_dir}" if config_dir is not None else ""
    return (
        f"error: mappings invalid: {count} problem(s); fix them, then run "
        f"`reconcile{where} validate` again"
    )


def make(root: Path, files: dict[str, bytes | None]) -> Path:
    for rel, content in {**BASE, **files}.items():
        if content is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return clirun.invoke(*args, env=env)


def test_example_validates(tmp_path: Path) -> None:
    shutil.copytree(example_dir(), tmp_path / "mappings")
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.exit_code == 0
    assert result.stdout == "mappings valid: 5 SKUs, 7 customers\n"
    assert result.stderr == (  # the next step only (issue 28), keeping --config-dir
        f"next: `reconcile --config-dir {tmp_path} status` checks the credentials and whether "
        "the integration is active\n"
    )


def _sub(text: str, old: str, new: str) -> bytes:
    assert old in text
    return text.replace(old, new, 1).encode()


BAD_INPUTS = {
    "yaml syntax error": (
        {"mappings/customers.yaml": _sub(CUSTOMERS, "name: Globex", "name: [Globex")},
        "mappings/customers.yaml:6:9: ",  # the bracket, not where the parser gave up
        "this '[' is not closed by a ']'",
    ),
    "tab indentation": (
        {"mappings/skus.yaml": _sub(SKUS, "  product: ZT-OKTA-MFA", "\tproduct: ZT-OKTA-MFA")},
        "mappings/skus.yaml:4:1: ",
        "tab character in indentation; YAML indentation must use spaces",
    ),
    "duplicate key": (
        {"mappings/settings.yaml": _sub(SETTINGS, "  timezone: UTC\n", "  timezone: UTC\n"
                                                 "  sync_day: 16\n")},
        "mappings/settings.yaml:9:3: ",
        "duplicate key 'sync_day' (first defined at mappings/settings.yaml:7:3)",
    ),
    "unknown key": (
        {"mappings/settings.yaml": _sub(SETTINGS, "sync_day:", "sync_dya:")},
        "mappings/settings.yaml:7:3: ",
        "unknown key 'sync_dya', did you mean 'sync_day'?",
    ),
    "wrong type unit_price": (
        {"mappings/skus.yaml": _sub(SKUS, "unit_price: 3.00", 'unit_price: "ten"')},
        "mappings/skus.yaml:5:15: ",
        "unit_price: expected a number, got string 'ten'",
    ),
    "wrong type sync_day": (
        {"mappings/settings.yaml": _sub(SETTINGS, "sync_day: 15", 'sync_day: "15"')},
        "mappings/settings.yaml:7:13: ",
        "billing.sync_day: expected an integer, got string '15'",
    ),
    "out of range": (
        {"mappings/settings.yaml": _sub(SETTINGS, "sync_day: 15", "sync_day: 31")},
        "mappings/settings.yaml:7:13: ",
        "billing.sync_day: expected an integer from 1 to 28, got 31",
    ),
    "bad timezone": (
        {"mappings/settings.yaml": _sub(SETTINGS, "timezone: UTC", "timezone: Europe/Berlinn")},
        "mappings/settings.yaml:8:13: ",
        "expected an IANA time zone name such as UTC or Europe/London, got string "
        "'Europe/Berlinn'; did you mean 'Europe/Berlin'?",
    ),
    "bad e-mail": (
        {"mappings/settings.yaml": _sub(SETTINGS, "[ops@msp.example]", "[ops@msp.example, ops]")},
        "mappings/settings.yaml:10:37: ",
        "notifications.administrators[1]: expected an e-mail address",
    ),
    "duplicate customer id across split files": (
        {
            "mappings/customers.yaml": None,
            "mappings/customers/east.yaml": CUSTOMERS.encode(),
            "mappings/customers/west.yaml": b"# west\n- id: zt-0001\n  name: Acme West\n"
            b"  company: ACMEW\n  agreement: 77\n",
        },
        "mappings/customers/west.yaml:2:7: ",
        "duplicate customer id 'zt-0001' (first at mappings/customers/east.yaml:1:7)",
    ),
    "duplicate sku": (
        {"mappings/skus.yaml": (SKUS + "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO2\n").encode()},
        "mappings/skus.yaml:6:8: ",
        "duplicate SKU 'OKTA-SSO' (first at mappings/skus.yaml:1:8)",
    ),
    "unknown sku in exclude_skus": (
        {"mappings/customers.yaml": _sub(CUSTOMERS, "[OKTA-MFA]", "[OKTA-LCM]")},
        "mappings/customers.yaml:9:18: ",
        "exclude_skus: unknown SKU 'OKTA-LCM', expected a SKU listed in mappings/skus.yaml",
    ),
    "empty file": (
        {"mappings/skus.yaml": b"# nothing yet\n"},
        "mappings/skus.yaml:1:1: ",
        "empty file, expected a list of SKU mappings",
    ),
    "non-utf-8 bytes": (
        {"mappings/customers.yaml": CUSTOMERS.replace("Globex", "Glob\xe9x").encode("latin-1")},
        "mappings/customers.yaml:6:13: ",
        "not valid UTF-8 (byte 0xe9); save the file as UTF-8",
    ),
    "http url to a non-loopback host": (
        {"mappings/settings.yaml": _sub(SETTINGS, "https://zt.example/", "http://zt.example/")},
        "mappings/settings.yaml:5:12: ",
        "zerotek.api_url: plain http:// is allowed only for loopback hosts",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input(tmp_path: Path, case: str) -> None:
    files, location, message = BAD_INPUTS[case]
    make(tmp_path, files)
    before = snapshot(tmp_path)
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == invalid(1, tmp_path)
    assert lines[0].startswith(location), lines
    assert message in lines[0], lines
    # a syntax error also shows the line and a caret (indented), other problems do not
    heads = [line for line in lines if not line.startswith("  ")]
    assert len(heads) == 2, lines
    assert result.stdout == ""
    assert snapshot(tmp_path) == before


def test_missing_mappings_directory(tmp_path: Path) -> None:
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"mappings: directory not found in {tmp_path.resolve()}")
    assert list(tmp_path.iterdir()) == []


def test_every_problem_in_one_run_github_and_json(tmp_path: Path, monkeypatch) -> None:
    make(
        tmp_path,
        {
            "mappings/settings.yaml": _sub(SETTINGS, "sync_day: 15", "sync_day: 0"),
            "mappings/skus.yaml": _sub(SKUS, "unit_price: 3.00", "unit_price: -3"),
            "mappings/customers.yaml": _sub(CUSTOMERS, "id: zt-0002", "id: zt-0001"),
        },
    )
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path.parent))
    text = invoke("validate", "--config-dir", str(tmp_path))
    github = invoke("validate", "--format", "github", "--config-dir", str(tmp_path))
    raw = invoke("validate", "--format=json", "--config-dir", str(tmp_path))
    assert text.exit_code == github.exit_code == raw.exit_code == 1
    located = [line.split(": ")[0] for line in text.stderr.splitlines()[:-1]]
    assert located == [
        "mappings/customers.yaml:5:7",
        "mappings/settings.yaml:7:13",
        "mappings/skus.yaml:5:15",
    ]
    prefix = tmp_path.name + "/mappings"
    assert github.stdout.splitlines() == [
        f"::error file={prefix}/customers.yaml,line=5,col=7::duplicate customer id 'zt-0001' "
        "(first at mappings/customers.yaml%3A1%3A7)".replace("%3A", ":"),
        f"::error file={prefix}/settings.yaml,line=7,col=13::billing.sync_day: expected an "
        "integer from 1 to 28, got 0",
        f"::error file={prefix}/skus.yaml,line=5,col=15::unit_price: expected a number from 0 "
        "to 1000000, got -3",
    ]
    data = json.loads(raw.stdout)
    assert data["valid"] is False
    assert [(e["file"], e["line"], e["col"]) for e in data["errors"]] == [
        ("mappings/customers.yaml", 5, 7),
        ("mappings/settings.yaml", 7, 13),
        ("mappings/skus.yaml", 5, 15),
    ]
    assert raw.stderr == ""


def test_json_when_valid(tmp_path: Path) -> None:
    result = invoke("validate", "--format", "json", "--config-dir", str(make(tmp_path, {})))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "errors": []}


def test_config_dir_before_after_and_from_the_environment(tmp_path: Path) -> None:
    good = make(tmp_path / "good", {})
    bad = tmp_path / "bad"
    bad.mkdir()
    assert invoke("--config-dir", str(good), "validate").exit_code == 0
    assert invoke("validate", "--config-dir", str(good)).exit_code == 0
    # after the subcommand wins over before it, which wins over the environment
    assert invoke("--config-dir", str(bad), "validate", "--config-dir", str(good)).exit_code == 0
    assert invoke("--config-dir", str(good), "validate", "--config-dir", str(bad)).exit_code == 1
    env = {"RECONCILE_CONFIG_DIR": str(good)}
    assert invoke("validate", env=env).exit_code == 0
    assert invoke("--config-dir", str(bad), "validate", env=env).exit_code == 1


def test_activate_and_deactivate(tmp_path: Path) -> None:
    shutil.copytree(example_dir(), tmp_path / "mappings")
    settings = tmp_path / "mappings/settings.yaml"
    original = settings.read_bytes()
    result = invoke("--config-dir", str(tmp_path), "deactivate")
    assert (result.exit_code, result.stdout) == (0, "integration deactivated\n")
    assert b"enabled: false " in settings.read_bytes()
    result = invoke("deactivate", "--config-dir", str(tmp_path))
    assert (result.exit_code, result.stdout) == (0, "integration already inactive\n")
    result = invoke("activate", "--config-dir", str(tmp_path))
    assert (result.exit_code, result.stdout) == (0, "integration activated\n")
    assert settings.read_bytes() == original
    result = invoke("--config-dir", str(tmp_path), "activate")
    assert (result.exit_code, result.stdout) == (0, "integration already active\n")


def test_activate_without_settings(tmp_path: Path) -> None:
    result = invoke("activate", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {tmp_path}/mappings/settings.yaml: file not found: not a config directory "
        "(pass --config-dir DIR, or create one with `reconcile init DIR`)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_then_validate(tmp_path: Path) -> None:
    target = tmp_path / "msp"
    result = invoke("init", str(target))
    assert result.exit_code == 0
    # one file per line, under the directory they were written in
    assert f"created in {target}:\n  mappings/settings.yaml\n" in result.stdout
    assert invoke("validate", "--config-dir", str(target)).exit_code == 0
    again = invoke("init", str(target))
    assert again.exit_code == 1
    from reconciler.config.scaffold import scaffold_files

    assert f"refusing to overwrite {len(scaffold_files())} existing file(s)" in again.stderr
    assert "\n  mappings/settings.yaml\n" in again.stderr  # one file per line


def test_init_defaults_to_the_config_dir(tmp_path: Path) -> None:
    assert invoke("--config-dir", str(tmp_path), "init").exit_code == 0
    assert (tmp_path / "mappings/customers.yaml").is_file()


@pytest.mark.parametrize("command", ["validate", "init", "activate", "deactivate"])
def test_help_explains_each_command(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "--config-dir" in result.stdout
    assert result.stdout.count("\n") > 5


def _script() -> str:
    script = Path(sys.executable).with_name("reconcile")
    found = str(script) if script.exists() else shutil.which("reconcile")
    assert found, "the `reconcile` console script is not installed (pip install -e .)"
    return found


def test_console_script_and_module_run_for_real(tmp_path: Path) -> None:
    make(tmp_path, {"mappings/settings.yaml": _sub(SETTINGS, "sync_day: 15", "sync_day: 31")})
    env = {k: v for k, v in os.environ.items() if k != "RECONCILE_CONFIG_DIR"}
    script = subprocess.run(
        [_script(), "validate"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert script.returncode == 1
    assert script.stderr.splitlines() == [
        "mappings/settings.yaml:7:13: billing.sync_day: expected an integer from 1 to 28, got 31",
        invalid(1),  # run in the config directory: the hint needs no --config-dir
    ]
    (tmp_path / "mappings/settings.yaml").write_text(SETTINGS)
    module = subprocess.run(
        [sys.executable, "-m", "reconciler", "--config-dir", str(tmp_path), "validate"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (module.returncode, module.stdout) == (0, "mappings valid: 2 SKUs, 2 customers\n")


def test_validate_never_touches_the_network(tmp_path: Path, monkeypatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    shutil.copytree(example_dir(), tmp_path / "mappings")
    assert invoke("validate", "--config-dir", str(tmp_path)).exit_code == 0


# --- every problem at once, one line per distinct problem (issue 17) -------------------------


def test_a_duplicate_key_does_not_hide_the_other_problems(tmp_path: Path) -> None:
    customers = (
        "- id: zt-0001\n"
        "  name: Acme\n"
        "  name: Acme again\n"  # duplicate key
        "  company: ACME\n"
        "  agreement: 7\n"
        "  colour: red\n"  # unknown key
        "- id: zt 0002\n"  # space in the id, and company/agreement missing
        "  name: Globex\n"
    )
    make(tmp_path, {"mappings/customers.yaml": customers.encode()})
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "mappings/customers.yaml:3:3: duplicate key 'name' (first defined at "
        "mappings/customers.yaml:2:3)",
        "mappings/customers.yaml:6:3: unknown key 'colour', expected one of: id, name, company, "
        "agreement, exclude_skus, shared_agreement, prices",
        "mappings/customers.yaml:7:3: missing required key 'agreement'",
        "mappings/customers.yaml:7:3: missing required key 'company'",
        "mappings/customers.yaml:7:7: id: expected a value without spaces, got string 'zt 0002'",
        invalid(5, tmp_path),
    ]


def test_an_alias_bomb_is_one_line_and_the_rest_is_still_checked(tmp_path: Path) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    make(tmp_path, {"mappings/skus.yaml": ("\n".join(lines) + "\n").encode()})
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "mappings/skus.yaml:1:1: expected a list, got a mapping",
        "mappings/skus.yaml:2:8: aliases (*name) are not supported; write the value out "
        "in full (72 in this file, the first here)",
        invalid(2, tmp_path),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", "expected an integer, got string 'nan'; NaN (not a number) cannot be used here"),
        (".inf", "expected an integer, got string '.inf'; infinity cannot be used here"),
        ("1e999", "expected an integer, got string '1e999'; the number is too large"),
        ("1e308", "expected an integer, got number 1e+308"),
        ("15.0", "expected an integer, got number 15.0"),
        ("'15'", "expected an integer, got string '15'; write the number without quotes"),
    ],
)
def test_numbers_that_are_not_numbers_say_so(tmp_path: Path, value: str, message: str) -> None:
    make(tmp_path, {"mappings/settings.yaml": _sub(SETTINGS, "sync_day: 15", f"sync_day: {value}")})
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    (line, _summary) = result.stderr.splitlines()
    assert line.startswith(f"mappings/settings.yaml:7:13: billing.sync_day: {message}")
    assert "without quotes" not in line or value.startswith("'")


def test_a_float_agreement_id_is_refused(tmp_path: Path) -> None:
    make(
        tmp_path,
        {"mappings/customers.yaml": _sub(CUSTOMERS, "agreement: 1006", "agreement: 1e308")},
    )
    result = invoke("validate", "--config-dir", str(tmp_path))
    assert result.stderr.splitlines()[0] == (
        "mappings/customers.yaml:8:14: agreement: expected an integer or a string, "
        "got number 1e+308"
    )


def test_progress_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    import pty

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from validate_scale import generate

    generate(tmp_path / "big", 3000, 1)
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "validate",
        "--config-dir",
        str(tmp_path / "big"),
    ]
    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower) as proc:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        assert proc.stdout is not None
        stdout = proc.stdout.read()
    os.close(leader)
    assert proc.returncode == 0 and stdout == b"mappings valid: 5 SKUs, 3000 customers\n"
    assert b"reading mappings/customers.yaml" in drawn
    assert b"checking mappings/customers.yaml" in drawn
    piped = subprocess.run(command, capture_output=True, check=True)
    # not a terminal (CI logs): no bar, only the next step
    assert piped.stderr.decode().startswith("next: `reconcile --config-dir ")
    assert piped.stderr.count(b"\n") == 1
