"""The CLI test helper fails a test on a crash, which checking the output never did."""

from __future__ import annotations

import clirun
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.config import resources


def test_an_uncaught_exception_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> None:
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(resources, "schema_path", broken)
    raw = CliRunner().invoke(app, ["schema", "plan"])
    # What the old helpers checked: a crash passed them, with exit code 1 like a user error.
    assert "Traceback" not in raw.output and raw.exit_code == 1
    with pytest.raises(AssertionError, match="uncaught KeyError") as failed:
        clirun.invoke("schema", "plan")
    assert isinstance(failed.value.__cause__, KeyError)


def test_exit_codes_and_user_errors_pass() -> None:
    assert clirun.invoke("schema", "plan").exit_code == 0
    bad = clirun.invoke("schema", "nope")
    assert bad.exit_code == 1 and "unknown schema 'nope'" in bad.stderr
    assert clirun.invoke("no-such-command").exit_code == 1  # click's usage error: SystemExit
