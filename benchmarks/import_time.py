"""Import time of `reconcile --help` (python -X importtime), the cost of every CLI start.

    python benchmarks/import_time.py [--runs N] [--command "plan --help"]

Target: under 150 ms of imports for `reconcile --help`, beyond what a bare interpreter
imports (site, encodings: every Python program pays those). Each figure is the best of N
fresh interpreters (imports are CPU-bound: the minimum is the run least disturbed by other
load): the sum of the top-level imports' cumulative times as -X importtime reports them.
Also printed: the whole command's CPU time, the costliest imports (so a regression names its
culprit) and any heavy library that was imported (tests/cli/test_cli_conventions.py forbids
them for --help).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys

TARGET_MS = 150.0
# Needed only once a command runs, never to print help.
HEAVY = {"deepdiff", "httpx", "jsonschema", "fastjsonschema", "pydantic", "asyncio",
         "rapidfuzz", "yaml", "rich", "smtplib", "ssl"}  # fmt: skip


def one_run(args: list[str]) -> tuple[float, list[tuple[float, str]], set[str]]:
    """(total ms, [(ms, name)] of imports at depth <= 1, every top package imported)."""
    command = ["-c", "pass"] if args == ["<bare>"] else ["-m", "reconciler", *args]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    total = 0.0
    shallow: list[tuple[float, str]] = []
    packages: set[str] = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative, name = line.split("|", 2)
        name = name[1:]  # one space after the bar; two more per level of nesting
        depth = (len(name) - len(name.lstrip(" "))) // 2
        ms = int(cumulative) / 1000
        packages.add(name.strip().split(".")[0])
        if depth == 0:
            total += ms  # nested imports are inside their parent's cumulative time
        if depth <= 1:
            shallow.append((ms, "  " * depth + name.strip()))
    return total, sorted(shallow, reverse=True), packages


def cpu_ms(argv: list[str], runs: int) -> float:
    """Best CPU time (user + sys) of a whole process: unlike wall time, other processes'
    load on the machine hardly changes it."""
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, capture_output=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, used * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--command", default="--help", help='e.g. "plan --help"')
    args = parser.parse_args()
    runs = [one_run(args.command.split()) for _ in range(args.runs)]
    best_ms, best_top, packages = min(runs)
    median = sorted(ms for ms, _, _ in runs)[len(runs) // 2]
    # What every Python program pays before its first import (site, encodings...).
    bare_ms = min(one_run(["<bare>"])[0] for _ in range(args.runs))
    own = best_ms - bare_ms
    verdict = "OK" if own < TARGET_MS else "OVER TARGET"
    print(f"reconcile {args.command}: imports {own:.1f} ms beyond a bare interpreter's "
          f"{bare_ms:.1f} ms, best of {args.runs} (total median {median:.1f} ms; target < "
          f"{TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
    bare = cpu_ms([sys.executable, "-c", "pass"], args.runs)
    full = cpu_ms([sys.executable, "-m", "reconciler", *args.command.split()], args.runs)
    print(
        f"CPU time of the whole command (imports and help): {full:.0f} ms, {full - bare:.0f} "
        f"ms beyond a bare interpreter's {bare:.0f} ms (hardly changed by other load)"
    )
    print("costliest imports, top level and one below (best run):")
    for ms, name in best_top[:12]:
        print(f"  {ms:8.1f} ms  {name}")
    heavy = sorted(packages & HEAVY)
    print(f"heavy libraries imported: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
