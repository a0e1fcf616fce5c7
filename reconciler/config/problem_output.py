"""Problems reported for machines: GitHub `::error` annotations (on the file and line of a
pull request) and the stable JSON of `validate --format json`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.core.errors import Problem
from reconciler.secure.untrusted import command_data, command_property


def github_annotation(problem: Problem, file: str | None = None) -> str:
    """`::error file=F,line=L,col=C::message` (workflow command escaping applied)."""
    loc = problem.location
    props = [f"file={command_property(file or loc.file)}"]
    if loc.line:
        props += [f"line={loc.line}", f"col={loc.col}"]
    return f"::error {','.join(props)}::{command_data(problem.message)}"


def problems_json(problems: Sequence[Problem]) -> dict[str, Any]:
    """The stable JSON shape of `validate --format json`."""
    return {
        "valid": not problems,
        "errors": [
            {
                "file": p.location.file,
                "line": p.location.line,
                "col": p.location.col,
                "message": p.message,
            }
            for p in sorted(problems)
        ],
    }


def annotation_file(config_dir: Path, problem: Problem) -> str:
    """The problem's file relative to the workspace GitHub resolves annotations against."""
    base = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    full = (Path(config_dir) / problem.location.file).resolve()
    try:
        return full.relative_to(base).as_posix()
    except ValueError:
        return problem.location.file
