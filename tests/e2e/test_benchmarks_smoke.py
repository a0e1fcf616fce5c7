"""The benchmark scripts still run, at a tiny size (seconds, not the minutes of a real
benchmark; their figures at this size mean nothing and are not checked, but each must reach its
verdict line, showing it ran through its work)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args", "expect"),
    [
        ("planner_cpu.py", ["--customers", "50", "--repeat", "1"],
         r"input: +50 customers x 10 SKUs.*\nplan: +[1-9]\d* changes, 0 customers with errors\n"
         r"planner time: "),
        # two sizes, each validated by a fresh `reconcile validate` (a third adds nothing)
        ("validate_scale.py", ["--customers", "50", "--steps", "2"],
         r"\n50 customers: [\d.]+ s wall .*\nCPU per customer at 50 vs 25: "),
        ("import_time.py", ["--runs", "1"], "heavy libraries imported: none"),
        ("plan_scale.py", ["--customers", "30", "--latency-ms", "0", "--skip-sequential"],
         "duplicate active additions"),
        ("plan_scale.py", ["--customers", "30", "--latency-ms", "0", "--skip-sequential",
                           "--repeat", "3"],
         re.escape("ratio to lower bound (median)")),
        ("sync_scale.py", ["--customers", "30", "--history", "2", "--latency-ms", "0"],
         "run-log part of apply"),
        ("discover_quality.py", ["--scale", "40"], "verdict: PASS"),
        ("sandbox_cpu.py", ["--customers", "40"], "CPU per page"),
    ],
    ids=["planner_cpu", "validate_scale", "import_time", "plan_scale", "plan_scale-repeat",
         "sync_scale", "discover_quality", "sandbox_cpu"],
)  # fmt: skip
def test_benchmark_runs_at_a_tiny_size(script: str, args: list[str], expect: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(expect, done.stdout), done.stdout
