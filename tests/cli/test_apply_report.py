"""The apply report is written a run of lines at a time (one flush per line cost 0.3 s at
10,000 customers): what a person sees on a terminal, both streams in one, keeps its order."""

import subprocess
import sys

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
