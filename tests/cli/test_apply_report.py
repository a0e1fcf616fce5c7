"""The apply report is written a run of lines at a time (one flush per line cost 0.3 s at
10,000 customers): what a person sees on a terminal, both streams in one, keeps its order."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runlog_samples import success_result

from reconciler.cli import apply_report
from reconciler.config.resources import example_dir
from reconciler.engine.interface import SyncOutcome
from reconciler.records import runlog

SCRIPT = """
from reconciler.cli.apply_report import _Lines
lines = _Lines(err=False)
for text, err in [("a", False), ("b", False), ("error: e1", True), ("c", False),
                  ("error: e2", True), ("error: e3", True)]:
    lines.add(text, err=err)
lines.flush()
lines.flush()  # nothing left: writes nothing
"""


def test_the_report_keeps_its_order_across_stdout_and_stderr() -> None:
    both = subprocess.run(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, check=True,
    ).stdout  # fmt: skip
    assert both.splitlines() == ["a", "b", "error: e1", "c", "error: e2", "error: e3"]
    apart = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert apart.stdout == "a\nb\nc\n"
    assert apart.stderr == "error: e1\nerror: e2\nerror: e3\n"


def test_lines_gathered_before_an_interruption_are_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C (or any error) while the report is written: the writes already reported
    are on the terminal, as when each line was written at once; only the rest is lost."""
    result = success_result()  # zt-0001: an update, then an add
    shutil.copytree(example_dir(), tmp_path / "mappings")
    handle = runlog.start_run(tmp_path, result.plan, trigger="manual", started=result.started)
    outcome = SyncOutcome(result, handle.record, handle.finish(result), ())

    def plain(text: object) -> str:
        if text == "CW-OKTA-MFA":  # the second write's line: the signal lands here
            raise KeyboardInterrupt
        return str(text)

    monkeypatch.setattr(apply_report, "plain", plain)
    with pytest.raises(KeyboardInterrupt):
        apply_report.report_outcome(outcome, tmp_path)
    assert capsys.readouterr().out == "  zt-0001: update CW-OKTA-SSO 40 → 42: ok\n"
