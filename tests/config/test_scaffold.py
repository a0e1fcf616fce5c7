"""init scaffolds a valid config; activate/deactivate change one value and nothing else."""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import clirun
import pytest

import reconciler
from reconciler.config import scaffold
from reconciler.config.loader import load_config, validate_config
from reconciler.config.resources import SCHEMA_NAMES, example_dir, schema_path, schemas_dir
from reconciler.core.errors import ConfigError, ReconcileError

SETTINGS = "mappings/settings.yaml"


def changed_lines(before: bytes, after: bytes) -> list[str]:
    diff = difflib.ndiff(
        before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    )
    return [line for line in diff if line[:1] in "+-"]


def test_init_writes_the_example_and_it_validates(tmp_path: Path) -> None:
    target = tmp_path / "new"
    written = scaffold.init(target)
    mappings = ["mappings/settings.yaml", "mappings/skus.yaml", "mappings/customers.yaml"]
    assert written[:3] == mappings
    for rel in mappings:
        source = example_dir() / Path(rel).name
        assert (target / rel).read_bytes() == source.read_bytes()
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == sorted(
        written
    )
    assert validate_config(target) == []
    config = load_config(target)
    assert (len(config.skus), len(config.customers)) == (5, 7)


def test_scaffold_files_is_the_single_list_init_uses(tmp_path: Path) -> None:
    files = scaffold.scaffold_files()
    assert [f.target for f in files] == scaffold.init(tmp_path)
    assert all(f.text is not None or (f.source and f.source.is_file()) for f in files)


def test_init_gives_editors_the_schemas_and_git_an_ignore_list(tmp_path: Path) -> None:
    written = scaffold.init(tmp_path)
    for name in SCHEMA_NAMES:
        target = f"schemas/{name}.schema.json"
        assert target in written
        assert (tmp_path / target).read_bytes() == schema_path(name).read_bytes()
    # Each mapping file names its schema in a yaml-language-server modeline, relative to
    # itself, and the schema is there; .vscode/settings.json covers customers/*.yaml too.
    for name in ("settings", "skus", "customers"):
        first = (tmp_path / f"mappings/{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../schemas/{name}.schema.json"
        assert (tmp_path / "mappings" / first.split("=", 1)[1]).resolve().is_file()
    vscode = json.loads((tmp_path / ".vscode/settings.json").read_text(encoding="utf-8"))
    for schema, globs in vscode["yaml.schemas"].items():
        assert (tmp_path / schema).is_file()
        assert all(fnmatch.fnmatch("mappings/customers/emea.yaml", g) or
                   (tmp_path / g).is_file() for g in globs)  # fmt: skip
    assert "mappings/customers/*.yaml" in vscode["yaml.schemas"]["./schemas/customers.schema.json"]
    ignored = (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"plan.json", "plan.md", scaffold.LOCK_DIR} <= set(ignored)
    assert not any(line.startswith("runs") for line in ignored)  # the sync log is committed
    assert (tmp_path / ".github/dependabot.yml").is_file()


def test_schema_ids_are_urns_and_every_schema_is_printable() -> None:
    shipped = {p.name.removesuffix(".schema.json") for p in schemas_dir().glob("*.json")}
    assert set(SCHEMA_NAMES) == shipped
    for name in SCHEMA_NAMES:
        schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
        assert schema["$id"] == f"urn:zerotek-cw-reconciler:schema:{name}"
        result = clirun.invoke("schema", name)
        assert result.exit_code == 0
        assert result.stdout == schema_path(name).read_text(encoding="utf-8")
    bad = clirun.invoke("schema", "../pyproject")
    assert bad.exit_code == 1 and "unknown schema '../pyproject'" in bad.stderr


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings/skus.yaml").write_text("# mine\n")
    with pytest.raises(ReconcileError) as info:
        scaffold.init(tmp_path)
    assert "refusing to overwrite" in str(info.value)
    assert "mappings/skus.yaml" in str(info.value)
    assert sorted(p.name for p in (tmp_path / "mappings").iterdir()) == ["skus.yaml"]
    assert (tmp_path / "mappings/skus.yaml").read_text() == "# mine\n"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    shutil.copytree(example_dir(), tmp_path / "mappings")
    return tmp_path


def test_deactivate_then_activate_change_exactly_one_line(config_dir: Path) -> None:
    path = config_dir / SETTINGS
    original = path.read_bytes()
    assert scaffold.set_enabled(config_dir, False) is True
    off = path.read_bytes()
    diff = changed_lines(original, off)
    assert len(diff) == 2, diff  # one line out, one line in
    assert diff[0].startswith("- enabled: true ") and diff[1].startswith("+ enabled: false ")
    # the inline comment survives, still in its column
    assert diff[0].index("#") == diff[1].index("#")
    assert diff[0][diff[0].index("#") :] == diff[1][diff[1].index("#") :]
    assert load_config(config_dir).settings.enabled is False
    assert scaffold.set_enabled(config_dir, False) is False
    assert path.read_bytes() == off
    assert scaffold.set_enabled(config_dir, True) is True
    assert path.read_bytes() == original
    assert scaffold.set_enabled(config_dir, True) is False


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # absent: inserted as the first line after the leading comments
        (b"# head\n# more\n\nbilling:\n  sync_day: 15\n", b"# head\n# more\n\nenabled: false\n"
         b"billing:\n  sync_day: 15\n"),
        (b"billing: {}\n", b"enabled: false\nbilling: {}\n"),
        (b"# only comments", b"# only comments\nenabled: false\n"),
        (b"", b"enabled: false\n"),
        # CRLF files and a byte-order mark keep their bytes
        (b"\xef\xbb\xbfa: 1\r\nenabled: true\r\nb: 2\r\n",
         b"\xef\xbb\xbfa: 1\r\nenabled: false\r\nb: 2\r\n"),
        (b"# x\r\nb: 2\r\n", b"# x\r\nenabled: false\r\nb: 2\r\n"),
        # odd spellings of the value are replaced by the canonical one
        # an aligned inline comment keeps its column (one space of padding always stays)
        (b"enabled:   True   # keep\n", b"enabled:   false  # keep\n"),
        (b"enabled: true # x\n", b"enabled: false # x\n"),
        (b"enabled: 'yes'\n", b"enabled: false\n"),
        (b"enabled:\nx: 1\n", b"enabled: false\nx: 1\n"),
        (b"enabled: true # caf\xc3\xa9 \xe2\x9c\x93\n",
         b"enabled: false # caf\xc3\xa9 \xe2\x9c\x93\n"),
        # a nested `enabled` is not the integration switch
        (b"x:\n  enabled: true\nenabled: true\n", b"x:\n  enabled: true\nenabled: false\n"),
    ],
)  # fmt: skip
def test_set_enabled_edits_in_place(tmp_path: Path, before: bytes, after: bytes) -> None:
    (tmp_path / "mappings").mkdir()
    path = tmp_path / SETTINGS
    path.write_bytes(before)
    scaffold.set_enabled(tmp_path, False)
    assert path.read_bytes() == after
    assert [p.name for p in (tmp_path / "mappings").iterdir()] == ["settings.yaml"]  # no temp


def test_set_enabled_keeps_the_file_mode(config_dir: Path) -> None:
    path = config_dir / SETTINGS
    path.chmod(0o640)
    scaffold.set_enabled(config_dir, False)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"enabled: [true]\n", "mappings/settings.yaml:1:10: enabled: expected true or false"),
        (b"- a\n", "mappings/settings.yaml:1:1: expected a mapping of settings"),
        (b"{a: 1}\n", "mappings/settings.yaml:1:1: add `enabled: false` to this mapping by hand"),
        (b"enabled: true\nenabled: [\n", "mappings/settings.yaml:3:1: YAML syntax error"),
        (b"a: \xff\n", "mappings/settings.yaml:1:4: not valid UTF-8"),
    ],
)
def test_set_enabled_refuses_what_it_cannot_edit(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / SETTINGS).write_bytes(content)
    with pytest.raises(ConfigError) as info:
        scaffold.set_enabled(tmp_path, False)
    assert str(info.value).startswith(message)
    assert (tmp_path / SETTINGS).read_bytes() == content


def test_set_enabled_without_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        scaffold.set_enabled(tmp_path, True)
    assert str(info.value) == (
        f"{tmp_path}/mappings/settings.yaml: file not found: not a config directory "
        "(pass --config-dir DIR, or create one with `reconcile init DIR`)"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_from_an_installed_layout(tmp_path: Path) -> None:
    """The wheel layout: schemas and examples as reconciler._schemas / reconciler._example."""
    site = tmp_path / "site"
    package = Path(reconciler.__file__).parent
    shutil.copytree(package, site / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    root = package.parent
    shutil.copytree(root / "schemas", site / "reconciler/_schemas")
    shutil.copytree(root / "mappings", site / "reconciler/_example")
    if (root / ".github/workflows").is_dir():  # init scaffolds the workflows too
        shutil.copytree(root / ".github/workflows", site / "reconciler/_example/workflows")
    (site / "reconciler/_example/github").mkdir()
    shutil.copy(root / ".github/dependabot.yml", site / "reconciler/_example/github")
    shutil.copytree(root / "requirements", site / "reconciler/_requirements")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    run = subprocess.run(
        [sys.executable, "-c", "import reconciler.cli.commands as c; print(c.__file__); c.main()",
         "init", str(work / "cfg")],
        cwd=work, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(site / "reconciler"))
    assert (work / "cfg/mappings/skus.yaml").read_bytes() == (
        root / "mappings/skus.yaml"
    ).read_bytes()
    assert validate_config(work / "cfg") == []
