"""The distribution as pip sees it: one version, the licence text, metadata, and the
sandbox's place (a supported feature of the CLI, not Python API)."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import reconciler

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info into the source tree, and
    # xdist may run this module's tests on several workers, each building at once.
    source = tmp_path_factory.mktemp("source") / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache",
        ".ruff_cache",
    ))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (path,) = out.glob("zerotek_cw_reconciler-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_the_wheel_carries_the_mit_licence_text(wheel: zipfile.ZipFile) -> None:
    licences = [n for n in wheel.namelist() if n.endswith("/LICENSE") and ".dist-info/" in n]
    assert licences, wheel.namelist()
    text = wheel.read(licences[0]).decode()
    assert text.startswith("MIT License") and text == (ROOT / "LICENSE").read_text()
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_one_version_everywhere(wheel: zipfile.ZipFile) -> None:
    assert _metadata(wheel)["Version"] == reconciler.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--version"], capture_output=True, text=True
    )
    assert done.stdout.strip() == f"reconcile {reconciler.__version__}"


def test_metadata_names_authors_urls_classifiers_and_tzdata(wheel: zipfile.ZipFile) -> None:
    meta = _metadata(wheel)
    assert meta["Author"] or meta["Author-email"]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    classifiers = meta.get_all("Classifier")
    versions = [
        c.rsplit(" ", 1)[1]
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert versions[0] == "3.11"
    workflow = (ROOT / ".github/workflows/tests.yml").read_text()
    assert f'"{versions[-1]}"' in workflow  # CI tests the newest version the package claims
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("tzdata") and ";" not in r for r in requires)


def test_the_sandbox_ships_no_test_only_mutators() -> None:
    from reconciler.sandbox import Sandbox

    for name in ("set_users", "add_addition", "update_agreement", "set_addition_quantity"):
        assert not hasattr(Sandbox, name), name
