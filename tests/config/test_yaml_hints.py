"""Issue 28: a YAML mistake is shown at the line the user wrote, with that line, a caret
under the column and the cause in plain words, through `reconcile validate` as users run it.
(On the old code each of these was the parser's raw text, several at the line after.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.config.resources import example_dir

runner = CliRunner()

SKUS = "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO\n- sku: OKTA-MFA\n  product: ZT-OKTA-MFA\n"

# name: (file, text with the mistake, line:col of the mistake, the line shown, caret column,
# words the hint must contain)
CASES = {
    "indented too far": (
        "skus.yaml",
        "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO\n   unit_price: 4.00\n",
        "3:4",
        "   unit_price: 4.00",
        3,
        "indented more than line 2",
    ),
    "indented too little": (
        "skus.yaml",
        "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO\n unit_price: 4.00\n",
        "3:2",
        " unit_price: 4.00",
        1,
        "indentation does not match",
    ),
    "no space after the colon": (
        "skus.yaml",
        "- sku: OKTA-SSO\n  product:ZT-OKTA-SSO\n  unit_price: 4.00\n",
        "2:10",
        "  product:ZT-OKTA-SSO",
        9,
        "missing space after ':'",
    ),
    "no space after the colon, with a comment": (
        "skus.yaml",
        "- sku: OKTA-SSO\n  product:ZT-OKTA-SSO  # the SSO product\n",
        "2:10",
        "  product:ZT-OKTA-SSO  # the SSO product",
        9,
        "(YAML reads `product:ZT-OKTA-SSO` as one word, not a key and a value): write "
        "`product: ZT-OKTA-SSO`",
    ),
    "unquoted colon in a value": (
        "customers.yaml",
        "- id: zt-0001\n  name: Acme: Corp\n  company: ACME\n  agreement: 1001\n",
        "2:13",
        "  name: Acme: Corp",
        12,
        'put the value in quotes, e.g. name: "Acme: Corp"',
    ),
    "unquoted hash starting a value": (
        "customers.yaml",
        "- id: zt-0001\n  name: #1 Acme\n  company: ACME\n  agreement: 1001\n",
        "2:8",
        "  name: #1 Acme",
        8,
        "an unquoted ' #' starts a comment; quote the value, e.g. name: \"#1 Acme\"",
    ),
    "tab in the indentation": (
        "skus.yaml",
        "- sku: OKTA-SSO\n\tproduct: ZT-OKTA-SSO\n",
        "2:1",
        " product: ZT-OKTA-SSO",  # the tab shown as a space, so the caret lines up
        0,
        "tab character in indentation",
    ),
    "list item under a mapping": (
        "settings.yaml",
        None,  # built from the example settings below
        None,
        "- UTC",
        0,
        "a list item ('- ') where a key was expected",
    ),
}


def _config(tmp_path: Path, file: str, text: str) -> Path:
    root = tmp_path / "config"
    shutil.copytree(example_dir(), root / "mappings")
    (root / "mappings" / file).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_a_yaml_mistake_is_shown_where_it_is_with_a_hint(tmp_path: Path, case: str) -> None:
    file, text, where, shown, caret, hint = CASES[case]
    if text is None:  # a list item appended under the settings mapping
        settings = (example_dir() / "settings.yaml").read_text(encoding="utf-8")
        text = settings.rstrip("\n") + "\n- UTC\n"
        where = f"{text.count(chr(10))}:1"
    root = _config(tmp_path, file, text)
    result = runner.invoke(app, ["validate", "--config-dir", str(root)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"mappings/{file}:{where}: "), lines
    assert hint in lines[0], lines
    line_no = where.split(":")[0]
    assert lines[1] == f"  {line_no} | {shown}", lines
    assert lines[2] == f"  {' ' * len(line_no)} | {' ' * caret}^", lines
    assert lines[3].startswith("error: mappings invalid: 1 problem(s)")
    assert "YAML syntax error" not in result.stderr  # the parser's words only when unknown


def test_the_excerpt_stays_out_of_json_and_annotations(tmp_path: Path) -> None:
    """Scripts and pull requests get the one-line message; only a terminal gets the caret."""
    root = _config(tmp_path, "skus.yaml", "- sku: OKTA-SSO\n  product:ZT-OKTA-SSO\n")
    as_json = runner.invoke(app, ["validate", "--format", "json", "--config-dir", str(root)])
    assert "\n" not in as_json.stdout.split('"message": ')[1].split('"')[1]
    github = runner.invoke(app, ["validate", "--format", "github", "--config-dir", str(root)])
    assert github.stdout.count("::error") == 1 and "%0A" not in github.stdout
    status = runner.invoke(app, ["status", "--config-dir", str(root)])
    detail = next(line for line in status.stdout.splitlines() if "skus.yaml:2:10" in line)
    assert detail.endswith("write `product: ZT-OKTA-SSO`")  # one line, no excerpt glued on
    assert " | " not in status.stdout


def test_other_commands_show_the_same_problem_as_an_error(tmp_path: Path) -> None:
    root = _config(tmp_path, "skus.yaml", "- sku: OKTA-SSO\n  product:ZT-OKTA-SSO\n")
    result = runner.invoke(app, ["--config-dir", str(root), "plan"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: mappings/skus.yaml:2:10: missing space after ':'")
    assert "  2 |   product:ZT-OKTA-SSO\n" in result.stderr
