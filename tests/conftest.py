"""Shared fixtures: the sandbox on loopback and a config dir pointed at it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config.resources import example_dir
from reconciler.sandbox import Sandbox, default_fixture

ENV_PREFIXES = ("CW_", "ZEROTEK_", "SMTP_", "RECONCILE_", "GITHUB_")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real credentials or CI variables."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(default_fixture()) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the example mappings (pointed at the sandbox by the environment)."""
    root = tmp_path / "config"
    shutil.copytree(example_dir(), root / "mappings")
    return root


def set_setting(config_dir: Path, key: str, value: str) -> None:
    """Rewrite `key: ...` in settings.yaml (keeps the rest of the file)."""
    path = config_dir / "mappings" / "settings.yaml"
    text, n = re.subn(
        rf"^(\s*){re.escape(key)}:[^#\n]*", rf"\g<1>{key}: {value}  ", path.read_text(), flags=re.M
    )
    assert n == 1, key
    path.write_text(text)
