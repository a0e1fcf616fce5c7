"""Shared fixtures (the sandbox on loopback, with or without the environment pointed at
it, a config dir, an SMTP server), the `reconcile` child process, and the Hypothesis
profiles."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from runlog_samples import SmtpServer, run_smtp

from reconciler.config.resources import example_dir
from reconciler.sandbox import Sandbox, default_fixture

ENV_PREFIXES = ("CW_", "ZEROTEK_", "SMTP_", "RECONCILE_", "GITHUB_")

# Hypothesis: "ci" runs the full example counts (CI=true, as GitHub Actions sets it, or
# HYPOTHESIS_PROFILE=ci); "dev", the default elsewhere, a fifth of them (at least 10), so
# the local suite stays quick. A test asking for N examples says `examples(N)`.
settings.register_profile("ci", max_examples=100)  # Hypothesis's own default
settings.register_profile("dev", max_examples=20)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() == "true" else "dev"
)
settings.load_profile(HYPOTHESIS_PROFILE)


def examples(n: int) -> int:
    """`n` examples under the "ci" profile, a fifth of them (at least 10) under "dev"."""
    return n if HYPOTHESIS_PROFILE == "ci" else max(10, n // 5)


def trials(n: int) -> int:
    """The same for a test that repeats a race: `n` in "ci", a fifth (at least 4) in "dev"."""
    return n if HYPOTHESIS_PROFILE == "ci" else max(4, n // 5)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real credentials or CI variables: the suite behaves the
    same on a laptop and in CI (`CI=true` changes what a refused attempt records, issue
    28); a test about CI sets the variable itself."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) or name == "CI":
            monkeypatch.delenv(name)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(default_fixture()) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """The sandbox alone: the environment is not pointed at it (see `sandbox`)."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server (aiosmtpd) on loopback; `.env()` points the reconciler at it."""
    with run_smtp() as server:
        yield server


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


def reconcile(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`python -m reconciler --config-dir ROOT ARGS...` as a child process, output piped."""
    command = [sys.executable, "-m", "reconciler", "--config-dir", str(root), *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
